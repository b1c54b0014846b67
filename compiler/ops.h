/*
 * ops.h - the one table that defines every IR operation.
 *
 * Each row: enum suffix, the name used in dumps and in model files, arity
 * (-1 = variadic), kind, shape rule (in shape.c), flags.  The table is expanded
 * with X-macros into the OpKind enum and the OpInfo array (graph.c), so nothing
 * is ever kept in step by hand.  Later stages add their columns here: gradient
 * rule, evaluator, code generator.
 *
 * Leaf ops (INPUT, PARAM, CONST) take no operands; their value comes from the
 * runtime, the initializer or the literal attached to the node.
 */

/*  enum         name                 arity kind        shape rule          flags */
#define GRADC_OPS(OP) \
  OP(INPUT,       "input",              0, K_LEAF,     shape_leaf,        0) \
  OP(PARAM,       "param",              0, K_LEAF,     shape_leaf,        0) \
  OP(CONST,       "const",              0, K_LEAF,     shape_leaf,        0) \
  /* elementwise binary, numpy broadcasting */ \
  OP(ADD,         "add",                2, K_BINARY,   shape_arith,       F_COMMUTATIVE) \
  OP(SUB,         "sub",                2, K_BINARY,   shape_arith,       0) \
  OP(MUL,         "mul",                2, K_BINARY,   shape_arith,       F_COMMUTATIVE) \
  OP(DIV,         "div",                2, K_BINARY,   shape_arith,       0) \
  OP(POW,         "pow",                2, K_BINARY,   shape_float_arith, 0) \
  OP(MAXIMUM,     "maximum",            2, K_BINARY,   shape_arith,       F_COMMUTATIVE) \
  OP(MINIMUM,     "minimum",            2, K_BINARY,   shape_arith,       F_COMMUTATIVE) \
  OP(EQ,          "equal",              2, K_BINARY,   shape_compare,     F_COMMUTATIVE | F_NO_GRAD) \
  OP(NE,          "not_equal",          2, K_BINARY,   shape_compare,     F_COMMUTATIVE | F_NO_GRAD) \
  OP(LT,          "less",               2, K_BINARY,   shape_compare,     F_NO_GRAD) \
  OP(LE,          "less_equal",         2, K_BINARY,   shape_compare,     F_NO_GRAD) \
  OP(GT,          "greater",            2, K_BINARY,   shape_compare,     F_NO_GRAD) \
  OP(GE,          "greater_equal",      2, K_BINARY,   shape_compare,     F_NO_GRAD) \
  /* elementwise unary */ \
  OP(NEG,         "neg",                1, K_UNARY,    shape_same_signed, 0) \
  OP(ABS,         "abs",                1, K_UNARY,    shape_same_signed, 0) \
  OP(SQUARE,      "square",             1, K_UNARY,    shape_same_num,    0) \
  OP(RELU,        "relu",               1, K_UNARY,    shape_same_num,    0) \
  OP(SIGMOID,     "sigmoid",            1, K_UNARY,    shape_same_float,  0) \
  OP(TANH,        "tanh",               1, K_UNARY,    shape_same_float,  0) \
  OP(EXP,         "exp",                1, K_UNARY,    shape_same_float,  0) \
  OP(LOG,         "log",                1, K_UNARY,    shape_same_float,  0) \
  OP(SQRT,        "sqrt",               1, K_UNARY,    shape_same_float,  0) \
  OP(CLIP,        "clip",               1, K_UNARY,    shape_same_num,    0) \
  OP(CAST,        "cast",               1, K_UNARY,    shape_cast,        0) \
  OP(WHERE,       "where",              3, K_TERNARY,  shape_where,       0) \
  /* linear algebra */ \
  OP(MATMUL,      "matmul",             2, K_MATMUL,   shape_matmul,      0) \
  /* normalisations along one axis */ \
  OP(SOFTMAX,     "softmax",            1, K_AXIS,     shape_same_float,  0) \
  OP(LOG_SOFTMAX, "log_softmax",        1, K_AXIS,     shape_same_float,  0) \
  /* reductions */ \
  OP(SUM,         "sum",                1, K_REDUCE,   shape_reduce,      0) \
  OP(MEAN,        "mean",               1, K_REDUCE,   shape_reduce,      0) \
  OP(MAX,         "max",                1, K_REDUCE,   shape_reduce,      0) \
  OP(MIN,         "min",                1, K_REDUCE,   shape_reduce,      0) \
  OP(ARGMAX,      "argmax",             1, K_REDUCE,   shape_argreduce,   F_NO_GRAD) \
  OP(ARGMIN,      "argmin",             1, K_REDUCE,   shape_argreduce,   F_NO_GRAD) \
  /* layout */ \
  OP(RESHAPE,     "reshape",            1, K_LAYOUT,   shape_reshape,     0) \
  OP(TRANSPOSE,   "transpose",          1, K_LAYOUT,   shape_transpose,   0) \
  OP(BROADCAST,   "broadcast_to",       1, K_LAYOUT,   shape_broadcast,   0) \
  OP(SLICE,       "slice",              1, K_LAYOUT,   shape_slice,       0) \
  OP(CONCAT,      "concat",            -1, K_LAYOUT,   shape_concat,      0) \
  OP(ONE_HOT,     "one_hot",            1, K_LAYOUT,   shape_one_hot,     F_NO_GRAD) \
  /* losses with numerically stable fused forms */ \
  OP(SOFTMAX_CE,  "softmax_cross_entropy", 2, K_LOSS,  shape_softmax_ce,  0) \
  OP(SIGMOID_CE,  "sigmoid_cross_entropy", 2, K_LOSS,  shape_sigmoid_ce,  0)
