"""The HTTP edge: the JSON API, OpenAI-compatible routes, the chat and admin pages."""
