"""Templates and static files of the chat and admin pages; installed as the package qa.web."""
