"""Evaluation on BEIR and SQuAD-style datasets: retrieval, answers and abstention."""
