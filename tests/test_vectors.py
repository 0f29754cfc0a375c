import faiss
import numpy as np

from qa.index.vectors import build_vector_index, prepare_for_search


def clustered(n: int, dim: int = 64, centers: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(centers, dim))
    x = base[rng.integers(0, centers, n)] + 0.35 * rng.normal(size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def test_small_corpus_uses_exact_search():
    index, info = build_vector_index(clustered(500), threshold=1000)
    assert info["type"] == "flat" and index.ntotal == 500


def recall_after_reload(index, x, queries, tmp_path, k: int) -> float:
    """Recall@k against exact search of an index written to disk and read back."""
    flat, _ = build_vector_index(x, threshold=10**9, graph_threshold=10**9)
    path = str(tmp_path / "index.faiss")
    faiss.write_index(index, path)
    index = prepare_for_search(faiss.read_index(path))
    _, exact = flat.search(queries, k)
    _, approx = index.search(queries, k)
    return float(np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact, strict=True)]))


def test_large_corpus_uses_ivf_with_high_recall(tmp_path):
    x = clustered(20_000)
    ivf, info = build_vector_index(x, threshold=10_000)
    assert info["type"] == "ivf_sq8" and ivf.ntotal == 20_000
    assert recall_after_reload(ivf, x, clustered(200, seed=1), tmp_path, 10) >= 0.95


def test_mid_sized_corpus_uses_a_graph_with_high_recall(tmp_path):
    x = clustered(6_000)
    graph, info = build_vector_index(x, threshold=10**9, graph_threshold=5_000)
    assert info["type"] == "hnsw" and graph.ntotal == 6_000
    queries = clustered(200, seed=2)
    assert recall_after_reload(graph, x, queries, tmp_path, 10) >= 0.95
    assert recall_after_reload(graph, x, queries, tmp_path, 100) >= 0.9
