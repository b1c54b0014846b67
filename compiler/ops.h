/*
 * ops.h - the one table that defines every IR operation.
 *
 * Each row: enum suffix, the name used in dumps and in model files, arity
 * (-1 = variadic), kind, shape rule (shape.c), vector-Jacobian rule
 * (autodiff.c), reference evaluator (eval.c), flags.  The table
 * is expanded with X-macros into the OpKind enum and the OpInfo array
 * (graph.c), so nothing is ever kept in step by hand.  grad_none marks an op
 * without a rule: for F_NO_GRAD ops gradients stop there by definition; for
 * any other op, differentiating through it is a diagnostic at its source line.
 *
 * Leaf ops (INPUT, PARAM, CONST) take no operands; their value comes from the
 * runtime, the initializer or the literal attached to the node.
 */

/*  enum         name               arity kind        shape rule          gradient rule     evaluator        flags */
#define GRADC_OPS(OP) \
  OP(INPUT,       "input",              0, K_LEAF,     shape_leaf,        grad_none,        eval_leaf,       0) \
  OP(PARAM,       "param",              0, K_LEAF,     shape_leaf,        grad_none,        eval_leaf,       0) \
  OP(CONST,       "const",              0, K_LEAF,     shape_leaf,        grad_none,        eval_leaf,       0) \
  /* non-trainable state: optimizer slots, step counters */ \
  OP(STATE,       "state",              0, K_LEAF,     shape_leaf,        grad_none,        eval_leaf,       F_NO_GRAD) \
  /* the element count of a.to at run time (a symbolic batch), as a scalar */ \
  OP(SIZE,        "size",               0, K_LEAF,     shape_leaf,        grad_none,        eval_size,       F_NO_GRAD) \
  /* state <- value, after everything else of the step (see autodiff.c) */ \
  OP(ASSIGN,      "assign",             2, K_UPDATE,   shape_assign,      grad_none,        eval_assign,     F_NO_GRAD) \
  /* elementwise binary, numpy broadcasting */ \
  OP(ADD,         "add",                2, K_BINARY,   shape_arith,       grad_add,         eval_binary,     F_COMMUTATIVE) \
  OP(SUB,         "sub",                2, K_BINARY,   shape_arith,       grad_sub,         eval_binary,     0) \
  OP(MUL,         "mul",                2, K_BINARY,   shape_arith,       grad_mul,         eval_binary,     F_COMMUTATIVE) \
  OP(DIV,         "div",                2, K_BINARY,   shape_arith,       grad_div,         eval_binary,     0) \
  OP(POW,         "pow",                2, K_BINARY,   shape_float_arith, grad_pow,         eval_binary,     0) \
  OP(MAXIMUM,     "maximum",            2, K_BINARY,   shape_arith,       grad_minmax,      eval_binary,     F_COMMUTATIVE) \
  OP(MINIMUM,     "minimum",            2, K_BINARY,   shape_arith,       grad_minmax,      eval_binary,     F_COMMUTATIVE) \
  OP(EQ,          "equal",              2, K_BINARY,   shape_compare,     grad_none,        eval_binary,     F_COMMUTATIVE | F_NO_GRAD) \
  OP(NE,          "not_equal",          2, K_BINARY,   shape_compare,     grad_none,        eval_binary,     F_COMMUTATIVE | F_NO_GRAD) \
  OP(LT,          "less",               2, K_BINARY,   shape_compare,     grad_none,        eval_binary,     F_NO_GRAD) \
  OP(LE,          "less_equal",         2, K_BINARY,   shape_compare,     grad_none,        eval_binary,     F_NO_GRAD) \
  OP(GT,          "greater",            2, K_BINARY,   shape_compare,     grad_none,        eval_binary,     F_NO_GRAD) \
  OP(GE,          "greater_equal",      2, K_BINARY,   shape_compare,     grad_none,        eval_binary,     F_NO_GRAD) \
  /* elementwise unary */ \
  OP(NEG,         "neg",                1, K_UNARY,    shape_same_signed, grad_neg,         eval_unary,      0) \
  OP(ABS,         "abs",                1, K_UNARY,    shape_same_signed, grad_abs,         eval_unary,      0) \
  OP(SQUARE,      "square",             1, K_UNARY,    shape_same_num,    grad_square,      eval_unary,      0) \
  OP(RELU,        "relu",               1, K_UNARY,    shape_same_num,    grad_relu,        eval_unary,      0) \
  OP(SIGMOID,     "sigmoid",            1, K_UNARY,    shape_same_float,  grad_sigmoid,     eval_unary,      0) \
  OP(TANH,        "tanh",               1, K_UNARY,    shape_same_float,  grad_tanh,        eval_unary,      0) \
  OP(EXP,         "exp",                1, K_UNARY,    shape_same_float,  grad_exp,         eval_unary,      0) \
  OP(LOG,         "log",                1, K_UNARY,    shape_same_float,  grad_log,         eval_unary,      0) \
  OP(SQRT,        "sqrt",               1, K_UNARY,    shape_same_float,  grad_sqrt,        eval_unary,      0) \
  OP(CLIP,        "clip",               1, K_UNARY,    shape_same_num,    grad_clip,        eval_unary,      0) \
  OP(CAST,        "cast",               1, K_UNARY,    shape_cast,        grad_cast,        eval_unary,      0) \
  OP(WHERE,       "where",              3, K_TERNARY,  shape_where,       grad_where,       eval_where,      0) \
  /* linear algebra */ \
  OP(MATMUL,      "matmul",             2, K_MATMUL,   shape_matmul,      grad_matmul,      eval_matmul,     0) \
  /* normalisations along one axis */ \
  OP(SOFTMAX,     "softmax",            1, K_AXIS,     shape_same_float,  grad_softmax,     eval_softmax,    0) \
  OP(LOG_SOFTMAX, "log_softmax",        1, K_AXIS,     shape_same_float,  grad_log_softmax, eval_softmax,    0) \
  /* reductions */ \
  OP(SUM,         "sum",                1, K_REDUCE,   shape_reduce,      grad_sum,         eval_reduce,     0) \
  OP(MEAN,        "mean",               1, K_REDUCE,   shape_reduce,      grad_mean,        eval_reduce,     0) \
  OP(MAX,         "max",                1, K_REDUCE,   shape_reduce,      grad_reduce_max,  eval_reduce,     0) \
  OP(MIN,         "min",                1, K_REDUCE,   shape_reduce,      grad_reduce_max,  eval_reduce,     0) \
  OP(ARGMAX,      "argmax",             1, K_REDUCE,   shape_argreduce,   grad_none,        eval_argreduce,  F_NO_GRAD) \
  OP(ARGMIN,      "argmin",             1, K_REDUCE,   shape_argreduce,   grad_none,        eval_argreduce,  F_NO_GRAD) \
  /* layout */ \
  OP(RESHAPE,     "reshape",            1, K_LAYOUT,   shape_reshape,     grad_reshape,     eval_copy,       0) \
  OP(TRANSPOSE,   "transpose",          1, K_LAYOUT,   shape_transpose,   grad_transpose,   eval_transpose,  0) \
  OP(BROADCAST,   "broadcast_to",       1, K_LAYOUT,   shape_broadcast,   grad_broadcast,   eval_broadcast,  0) \
  OP(SLICE,       "slice",              1, K_LAYOUT,   shape_slice,       grad_slice,       eval_slice,      0) \
  OP(UNSLICE,     "unslice",            1, K_LAYOUT,   shape_unslice,     grad_unslice,     eval_unslice,    0) \
  OP(CONCAT,      "concat",            -1, K_LAYOUT,   shape_concat,      grad_concat,      eval_concat,     0) \
  OP(ONE_HOT,     "one_hot",            1, K_LAYOUT,   shape_one_hot,     grad_none,        eval_one_hot,    F_NO_GRAD) \
  /* losses with numerically stable fused forms */ \
  OP(SOFTMAX_CE,  "softmax_cross_entropy", 2, K_LOSS,  shape_softmax_ce,  grad_softmax_ce,  eval_softmax_ce, 0) \
  OP(SIGMOID_CE,  "sigmoid_cross_entropy", 2, K_LOSS,  shape_sigmoid_ce,  grad_sigmoid_ce,  eval_sigmoid_ce, 0) \
  /* 2-D windows over NHWC tensors (a.win): convolution is im2col + matmul, \
   * built by the conv2d sugar in call.c; col2im is im2col's adjoint */ \
  OP(IM2COL,      "im2col",             1, K_WINDOW,   shape_im2col,      grad_im2col,      eval_im2col,     0) \
  OP(COL2IM,      "col2im",             1, K_WINDOW,   shape_col2im,      grad_col2im,      eval_col2im,     0) \
  OP(MAXPOOL,     "maxpool2d",          1, K_WINDOW,   shape_pool,        grad_maxpool,     eval_pool,       0) \
  /* (x, gy) -> dx: gy routed to the first maximum of each window */ \
  OP(MAXPOOL_GRAD, "maxpool2d_grad",    2, K_WINDOW,   shape_maxpool_grad, grad_none,       eval_maxpool_grad, 0) \
  OP(AVGPOOL,     "avgpool2d",          1, K_WINDOW,   shape_pool,        grad_avgpool,     eval_pool,       0) \
  OP(AVGPOOL_GRAD, "avgpool2d_grad",    1, K_WINDOW,   shape_col2im,      grad_avgpool_grad, eval_avgpool_grad, 0) \
  /* train vs inference: train_step computes the first operand, forward and \
   * eval the second; gradients are the train step's, so they flow into the \
   * first */ \
  OP(TRAIN_SELECT, "train_select",      2, K_SELECT,   shape_train_select, grad_train_select, eval_train_select, 0) \
  /* (x[, step]) -> keep ? 1/(1-rate) : 0 per element of x's shape, from the \
   * counter-based generator at (seed, step, index); autodiff appends the \
   * step counter */ \
  OP(DROPOUT_MASK, "dropout_mask",     -1, K_RANDOM,   shape_dropout_mask, grad_none,        eval_dropout_mask, F_NO_GRAD)
