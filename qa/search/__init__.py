"""The question side: hybrid retrieval over an index version, sentence-level evidence,
short answer spans and calibrated confidence."""
