"""Differentiable operations, conventionally imported as ``import tinygrad_nlp.functions as F``.

Every operation is a ``Function`` class (``F.Exp``) plus a lowercase helper (``F.exp``) that
accepts Variables, ndarrays or Python scalars.
"""

from tinygrad_nlp.functions.shape import (  # noqa: F401
    BroadcastTo, Concat, GetItem, GetItemGrad, Reshape, Stack, SumTo, Transpose,
    broadcast_to, concat, get_item, reshape, stack, sum_to, transpose,
)
from tinygrad_nlp.functions.math import (  # noqa: F401
    Add, Cast, Clip, Cos, Div, Exp, Log, Mul, Neg, Pow, PowConst, ReLU, Sigmoid, Sin, Sqrt, Sub, Tanh,
    add, cast, clip, cos, div, exp, log, mul, neg, pow, rdiv, relu, rpow, rsub, sigmoid, sin, sqrt, sub,
    tanh,
)
from tinygrad_nlp.functions.reduce import Max, Mean, Min, Sum, max, mean, min, sum  # noqa: F401
from tinygrad_nlp.functions.nn import Dropout, Linear, MatMul, dropout, linear, matmul  # noqa: F401
from tinygrad_nlp.functions.embedding import (  # noqa: F401
    Embedding, EmbeddingBag, EmbeddingDot, EmbeddingGrad, InvalidIdError, check_ids,
    embedding, embedding_bag, embedding_dot,
)
from tinygrad_nlp.functions.losses import (  # noqa: F401
    LogSoftmax, SigmoidCrossEntropy, Softmax, SoftmaxCrossEntropy,
    log_softmax, negative_sampling_loss, sigmoid_cross_entropy, softmax, softmax_cross_entropy,
)
from tinygrad_nlp.functions.rnn import (  # noqa: F401
    GRUCell, LSTMCell, RNNCell, Unbind,
    gru_cell, gru_step, lstm_cell, lstm_step, rnn_cell, rnn_step, unbind,
)
from tinygrad_nlp.functions.attention import (  # noqa: F401
    AttentionWeights, WeightedSum, attention, attention_weights, weighted_sum,
)
from tinygrad_nlp.functions.recurrent_sequence import (  # noqa: F401
    GRUSequence, LSTMSequence, RNNSequence, gru_sequence, lstm_sequence, rnn_sequence,
)
