"""The FAISS part of an index: exact search for small corpora, an HNSW graph for mid-sized ones,
IVF with 8-bit codes for large ones (a graph of a million float vectors is slow to build here)."""

from __future__ import annotations

import math
from typing import Any

import faiss
import numpy as np

from qa.config import ANN_THRESHOLD, GRAPH_THRESHOLD

__all__ = ["ANN_THRESHOLD", "GRAPH_THRESHOLD", "build_vector_index", "prepare_for_search"]

# HNSW: links per node, and the candidate list while building and searching. On SciFact's
# 21,957 chunk vectors efSearch 128 keeps 99% of the exact top 100.
HNSW_M = 32
EF_CONSTRUCTION = 80
EF_SEARCH = 128
# Probed lists per query on IVF indexes: recall@10 against exact search stays >= 0.95 here.
NPROBE = 48


def build_vector_index(vectors: np.ndarray, threshold: int = ANN_THRESHOLD,
                       seed: int = 1234, graph_threshold: int = GRAPH_THRESHOLD,
                       ) -> tuple[faiss.Index, dict[str, Any]]:
    """An inner-product index over unit vectors, and a description for the manifest."""
    n, dim = vectors.shape
    if n < min(threshold, graph_threshold):
        index = faiss.IndexFlatIP(dim)
        if n:
            index.add(vectors)
        return index, {"type": "flat", "metric": "inner_product"}
    if n < threshold:
        graph = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = EF_CONSTRUCTION
        graph.hnsw.efSearch = EF_SEARCH
        graph.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return graph, {"type": "hnsw", "metric": "inner_product", "m": HNSW_M,
                       "ef_search": EF_SEARCH}
    nlist = int(2 ** round(math.log2(4 * math.sqrt(n))))
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                        faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(n, size=min(n, 64 * nlist), replace=False)]
    ivf.train(np.ascontiguousarray(sample, dtype=np.float32))
    for start in range(0, n, 100_000):
        ivf.add(np.ascontiguousarray(vectors[start : start + 100_000], dtype=np.float32))
    ivf.nprobe = NPROBE
    return ivf, {"type": "ivf_sq8", "metric": "inner_product", "nlist": nlist, "nprobe": NPROBE}


def prepare_for_search(index: faiss.Index) -> faiss.Index:
    """Set search-time parameters lost when an index is written and read back."""
    ivf = faiss.try_extract_index_ivf(index) if hasattr(faiss, "try_extract_index_ivf") else None
    if ivf is not None:
        ivf.nprobe = NPROBE
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = EF_SEARCH
    return index
