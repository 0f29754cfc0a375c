"""The build side: read a corpus folder, clean and chunk it, embed the chunks and write a
versioned index folder (FAISS vectors plus SQLite/FTS5)."""
