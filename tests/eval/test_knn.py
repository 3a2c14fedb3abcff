import numpy as np
import torch

from sslseg.eval.knn import knn_accuracy, knn_predict


def test_knn_separable_blobs_are_classified_perfectly(blobs):
    train_x, train_y = blobs(60, 5, seed=0)
    test_x, test_y = blobs(20, 5, seed=0)  # same centres (same seed), new noise below
    test_x = test_x + 0.01 * np.random.default_rng(1).normal(size=test_x.shape).astype(np.float32)
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=200, temperature=0.1) == 1.0


def test_knn_weighted_votes_match_a_hand_computation():
    # Two neighbours of class 0 at similarity ~0.6, one of class 1 at similarity 1.0: with
    # T = 0.1 the single close vote (e^10) beats the two far ones (2 e^6); with T = 10 the
    # votes are nearly equal weights and the majority wins.
    train = np.array([[1.0, 0.0], [0.6, 0.8], [0.6, -0.8]], np.float32)
    labels = np.array([1, 0, 0])
    query = np.array([[1.0, 0.0]], np.float32)
    assert knn_predict(train, labels, query, k=3, temperature=0.1).tolist() == [1]
    assert knn_predict(train, labels, query, k=3, temperature=10.0).tolist() == [0]


def test_knn_batches_agree_and_k_is_clipped(blobs):
    train_x, train_y = blobs(10, 3, spread=2.0, seed=2)
    test_x, _ = blobs(10, 3, spread=2.0, seed=3)
    whole = knn_predict(train_x, train_y, test_x, k=500, batch_size=1000)
    batched = knn_predict(torch.from_numpy(train_x), train_y, test_x, k=500, batch_size=7)
    assert np.array_equal(whole, batched)
    assert whole.shape == (30,) and whole.dtype == np.int64
