"""The knowledge base: parse, chunk, embed and index documents; search them for users and agents."""
