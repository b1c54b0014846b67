/*
 * ops.h - the one table that defines every IR operation.
 *
 * Each row: enum suffix, the name used in dumps and in model files, arity
 * (-1 = variadic), kind, shape rule (shape.c), vector-Jacobian rule
 * (autodiff.c), reference evaluator (eval.c), code generator (codegen.c),
 * identity, flags.  The table is expanded with X-macros into the OpKind
 * enum, the OpInfo array (graph.c) and codegen's dispatch, so nothing is
 * ever kept in step by hand.  grad_none marks an op without a rule: for
 * F_NO_GRAD ops gradients stop there by definition; for any other op,
 * differentiating through it is a diagnostic at its source line.  A row
 * names its code generator, so an op without one does not compile;
 * gen_none marks ops that need no code (leaves); gen_view the views, which
 * need none unless fuse() made them a root's own copy.
 *
 * What the passes know about an op lives here too, never in a list of op
 * names in a pass: the identity is the right operand u with x op u == x
 * (NAN: none; with F_COMMUTATIVE also the left one), which simplify drops;
 * and the flags (compiler.h) say
 *   F_COMMUTATIVE  a op b == b op a
 *   F_NO_GRAD      gradients stop here by definition
 *   F_ELEMENTWISE  each element from its operands' elements at the same
 *                  (broadcast) index: computed by codegen's scalar(), fused
 *                  into a consumer's loop, split across threads
 *   F_REDUCTION    one loop over its operand's elements: elementwise
 *                  operands are fused into it
 *   F_PARALLEL     other kernels whose outer iterations are independent
 *   F_VIEW         the operand's elements in the same order: no code, it
 *                  aliases the operand's buffer
 *   F_CONVERT      only changes shape or dtype: the operand itself when both
 *                  already match (simplify)
 *   F_INVOLUTION   op(op(x)) == x (simplify, canon)
 *   F_IMMEDIATE    a value codegen knows without a loop (a literal, a size
 *                  at run time): no buffer
 *   F_NAMED        storage the runtime addresses by name (inputs,
 *                  parameters, state): a root, never merged by CSE
 *   F_PERSISTENT   lives across steps, outside the workspace
 *   F_EFFECT       writes state: a root, never merged, no buffer of its own
 *   F_MODE         train_step and forward compute different operands
 *   F_RANDOM       a new value every step: never a constant
 *   F_LOOP         the structure of a loop: never merged, folded or fused
 *   F_LOWERED      replaced by a stage before the passes (grad: autodiff),
 *                  so no evaluator or code generator ever sees it
 * Adding an elementwise op touches its row, its rules (shape, gradient,
 * evaluator, a case in codegen's scalar()) and its tests, nothing else.
 *
 * Leaf ops (INPUT, PARAM, CONST) take no operands; their value comes from the
 * runtime, the initializer or the literal attached to the node.
 */

/*  enum         name               arity kind       shape rule          gradient rule      evaluator          code generator, identity, flags */
#define GRADC_OPS(OP) \
  OP(INPUT,       "input",             0, K_LEAF,    shape_leaf,         grad_none,         eval_leaf,         gen_none, NAN, F_NAMED) \
  OP(PARAM,       "param",             0, K_LEAF,    shape_leaf,         grad_none,         eval_leaf,         gen_none, NAN, F_NAMED | F_PERSISTENT) \
  OP(CONST,       "const",             0, K_LEAF,    shape_leaf,         grad_none,         eval_leaf,         gen_none, NAN, F_IMMEDIATE) \
  /* non-trainable state: optimizer slots, step counters */ \
  OP(STATE,       "state",             0, K_LEAF,    shape_leaf,         grad_none,         eval_leaf,         gen_none, NAN, F_NO_GRAD | F_NAMED | F_PERSISTENT) \
  /* the element count of a.to at run time (a symbolic batch), as a scalar */ \
  OP(SIZE,        "size",              0, K_LEAF,    shape_leaf,         grad_none,         eval_size,         gen_none, NAN, F_NO_GRAD | F_IMMEDIATE) \
  /* state <- value, after everything else of the step (see autodiff.c) */ \
  OP(ASSIGN,      "assign",            2, K_UPDATE,  shape_assign,       grad_none,         eval_assign,       cg_assign, NAN, F_NO_GRAD | F_EFFECT) \
  /* a gradient summed over data-parallel replicas, each weighted by its \
   * share of the global batch, through the instance's reduction callback \
   * (gradc_set_allreduce); the value itself on one process.  Made by the \
   * update stage (optimizer.c) only with CompileOptions.data_parallel */ \
  OP(ALLREDUCE,   "allreduce",         1, K_UNARY,   shape_same_float,   grad_none,         eval_copy,         gen_allreduce, NAN, F_NO_GRAD) \
  /* batch_norm(sync=true)'s batch statistics: a value's weighted mean \
   * over the replicas (each weighted by its share of the global batch: \
   * the global batch's statistic), by the same callback, finished before \
   * anything reads it.  Its gradient is that mean of the gradient: every \
   * replica's loss reads every replica's statistics (PyTorch \
   * SyncBatchNorm's backward all-reduce).  The value itself on one process */ \
  OP(REPLICA_MEAN, "replica_mean",     1, K_UNARY,   shape_same_float,   grad_replica_mean, eval_copy,         gen_replica_mean, NAN, 0) \
  /* elementwise binary, numpy broadcasting */ \
  OP(ADD,         "add",               2, K_BINARY,  shape_arith,        grad_add,          eval_binary,       gen_elementwise, 0, F_COMMUTATIVE | F_ELEMENTWISE) \
  OP(SUB,         "sub",               2, K_BINARY,  shape_arith,        grad_sub,          eval_binary,       gen_elementwise, 0, F_ELEMENTWISE) \
  OP(MUL,         "mul",               2, K_BINARY,  shape_arith,        grad_mul,          eval_binary,       gen_elementwise, 1, F_COMMUTATIVE | F_ELEMENTWISE) \
  OP(DIV,         "div",               2, K_BINARY,  shape_arith,        grad_div,          eval_binary,       gen_elementwise, 1, F_ELEMENTWISE) \
  OP(POW,         "pow",               2, K_BINARY,  shape_float_arith,  grad_pow,          eval_binary,       gen_elementwise, NAN, F_ELEMENTWISE) \
  OP(MAXIMUM,     "maximum",           2, K_BINARY,  shape_arith,        grad_minmax,       eval_binary,       gen_elementwise, NAN, F_COMMUTATIVE | F_ELEMENTWISE) \
  OP(MINIMUM,     "minimum",           2, K_BINARY,  shape_arith,        grad_minmax,       eval_binary,       gen_elementwise, NAN, F_COMMUTATIVE | F_ELEMENTWISE) \
  /* floor semantics (TF's FloorDiv/FloorMod, Python's // and %): the \
   * quotient rounds toward -inf, the remainder has the divisor's sign; an \
   * integer divisor of 0 gives 0 for both (numpy's choice), never a trap */ \
  OP(FLOORDIV,    "floordiv",          2, K_BINARY,  shape_arith,        grad_floordiv,     eval_binary,       gen_elementwise, NAN, F_ELEMENTWISE) \
  OP(FLOORMOD,    "floormod",          2, K_BINARY,  shape_arith,        grad_floormod,     eval_binary,       gen_elementwise, NAN, F_ELEMENTWISE) \
  OP(EQ,          "equal",             2, K_BINARY,  shape_compare,      grad_none,         eval_binary,       gen_elementwise, NAN, F_COMMUTATIVE | F_NO_GRAD | F_ELEMENTWISE) \
  OP(NE,          "not_equal",         2, K_BINARY,  shape_compare,      grad_none,         eval_binary,       gen_elementwise, NAN, F_COMMUTATIVE | F_NO_GRAD | F_ELEMENTWISE) \
  OP(LT,          "less",              2, K_BINARY,  shape_compare,      grad_none,         eval_binary,       gen_elementwise, NAN, F_NO_GRAD | F_ELEMENTWISE) \
  OP(LE,          "less_equal",        2, K_BINARY,  shape_compare,      grad_none,         eval_binary,       gen_elementwise, NAN, F_NO_GRAD | F_ELEMENTWISE) \
  OP(GT,          "greater",           2, K_BINARY,  shape_compare,      grad_none,         eval_binary,       gen_elementwise, NAN, F_NO_GRAD | F_ELEMENTWISE) \
  OP(GE,          "greater_equal",     2, K_BINARY,  shape_compare,      grad_none,         eval_binary,       gen_elementwise, NAN, F_NO_GRAD | F_ELEMENTWISE) \
  /* elementwise unary */ \
  OP(NEG,         "neg",               1, K_UNARY,   shape_same_signed,  grad_neg,          eval_unary,        gen_elementwise, NAN, F_ELEMENTWISE | F_INVOLUTION) \
  OP(ABS,         "abs",               1, K_UNARY,   shape_same_signed,  grad_abs,          eval_unary,        gen_elementwise, NAN, F_ELEMENTWISE) \
  OP(SQUARE,      "square",            1, K_UNARY,   shape_same_num,     grad_square,       eval_unary,        gen_elementwise, NAN, F_ELEMENTWISE) \
  OP(RELU,        "relu",              1, K_UNARY,   shape_same_num,     grad_relu,         eval_unary,        gen_elementwise, NAN, F_ELEMENTWISE) \
  /* x > 0 ? x : alpha x (a.alpha), tf.nn.leaky_relu */ \
  OP(LEAKY_RELU,  "leaky_relu",        1, K_UNARY,   shape_same_float,   grad_leaky_relu,   eval_unary,        gen_elementwise, NAN, F_ELEMENTWISE) \
  OP(SIGMOID,     "sigmoid",           1, K_UNARY,   shape_same_float,   grad_sigmoid,      eval_unary,        gen_elementwise, NAN, F_ELEMENTWISE) \
  OP(TANH,        "tanh",              1, K_UNARY,   shape_same_float,   grad_tanh,         eval_unary,        gen_elementwise, NAN, F_ELEMENTWISE) \
  OP(EXP,         "exp",               1, K_UNARY,   shape_same_float,   grad_exp,          eval_unary,        gen_elementwise, NAN, F_ELEMENTWISE) \
  OP(LOG,         "log",               1, K_UNARY,   shape_same_float,   grad_log,          eval_unary,        gen_elementwise, NAN, F_ELEMENTWISE) \
  OP(SQRT,        "sqrt",              1, K_UNARY,   shape_same_float,   grad_sqrt,         eval_unary,        gen_elementwise, NAN, F_ELEMENTWISE) \
  OP(SOFTPLUS,    "softplus",          1, K_UNARY,   shape_same_float,   grad_softplus,     eval_unary,        gen_elementwise, NAN, F_ELEMENTWISE) \
  /* the error function (libm's erf): PyTorch's exact GELU, x/2 (1 + \
   * erf(x / sqrt 2)), as ONNX writes it */ \
  OP(ERF,         "erf",               1, K_UNARY,   shape_same_float,   grad_erf,          eval_unary,        gen_elementwise, NAN, F_ELEMENTWISE) \
  /* issue 24: trigonometry, rounding (TF's round: half to even), sign, \
   * reciprocal; rounding and sign have no gradient, as in TF (None) */ \
  OP(SIN,         "sin",               1, K_UNARY,   shape_same_float,   grad_sin,          eval_unary,        gen_elementwise, NAN, F_ELEMENTWISE) \
  OP(COS,         "cos",               1, K_UNARY,   shape_same_float,   grad_cos,          eval_unary,        gen_elementwise, NAN, F_ELEMENTWISE) \
  OP(RECIPROCAL,  "reciprocal",        1, K_UNARY,   shape_same_float,   grad_reciprocal,   eval_unary,        gen_elementwise, NAN, F_ELEMENTWISE) \
  OP(FLOOR,       "floor",             1, K_UNARY,   shape_same_float,   grad_none,         eval_unary,        gen_elementwise, NAN, F_NO_GRAD | F_ELEMENTWISE) \
  OP(CEIL,        "ceil",              1, K_UNARY,   shape_same_float,   grad_none,         eval_unary,        gen_elementwise, NAN, F_NO_GRAD | F_ELEMENTWISE) \
  OP(ROUND,       "round",             1, K_UNARY,   shape_same_float,   grad_none,         eval_unary,        gen_elementwise, NAN, F_NO_GRAD | F_ELEMENTWISE) \
  OP(SIGN,        "sign",              1, K_UNARY,   shape_same_signed,  grad_none,         eval_unary,        gen_elementwise, NAN, F_NO_GRAD | F_ELEMENTWISE) \
  OP(CLIP,        "clip",              1, K_UNARY,   shape_same_num,     grad_clip,         eval_unary,        gen_elementwise, NAN, F_ELEMENTWISE) \
  OP(CAST,        "cast",              1, K_UNARY,   shape_cast,         grad_cast,         eval_unary,        gen_elementwise, NAN, F_ELEMENTWISE | F_CONVERT) \
  OP(WHERE,       "where",             3, K_TERNARY, shape_where,        grad_where,        eval_where,        gen_elementwise, NAN, F_ELEMENTWISE) \
  /* linear algebra */ \
  OP(MATMUL,      "matmul",            2, K_MATMUL,  shape_matmul,       grad_matmul,       eval_matmul,       cg_matmul, NAN, 0) \
  /* normalisations along one axis */ \
  OP(SOFTMAX,     "softmax",           1, K_AXIS,    shape_same_float,   grad_softmax,      eval_softmax,      cg_softmax, NAN, 0) \
  OP(LOG_SOFTMAX, "log_softmax",       1, K_AXIS,    shape_same_float,   grad_log_softmax,  eval_softmax,      cg_softmax, NAN, 0) \
  /* reductions */ \
  OP(SUM,         "sum",               1, K_REDUCE,  shape_reduce,       grad_sum,          eval_reduce,       cg_reduce,  NAN, F_REDUCTION) \
  OP(MEAN,        "mean",              1, K_REDUCE,  shape_reduce,       grad_mean,         eval_reduce,       cg_reduce,  NAN, F_REDUCTION) \
  OP(MAX,         "max",               1, K_REDUCE,  shape_reduce,       grad_reduce_max,   eval_reduce,       cg_reduce,  NAN, F_REDUCTION) \
  OP(MIN,         "min",               1, K_REDUCE,  shape_reduce,       grad_reduce_max,   eval_reduce,       cg_reduce,  NAN, F_REDUCTION) \
  /* the Euclidean norm over a.axes, sqrt(sum(x*x)): one op, so that its \
   * gradient x/norm can be 0 where the norm is (autodiff.c) */ \
  OP(NORM,        "norm",              1, K_REDUCE,  shape_norm,         grad_norm,         eval_reduce,       cg_reduce,  NAN, F_REDUCTION) \
  OP(ARGMAX,      "argmax",            1, K_REDUCE,  shape_argreduce,    grad_none,         eval_argreduce,    cg_argreduce, NAN, F_NO_GRAD) \
  OP(ARGMIN,      "argmin",            1, K_REDUCE,  shape_argreduce,    grad_none,         eval_argreduce,    cg_argreduce, NAN, F_NO_GRAD) \
  /* layout */ \
  OP(RESHAPE,     "reshape",           1, K_LAYOUT,  shape_reshape,      grad_reshape,      eval_copy,         gen_view, NAN, F_VIEW | F_CONVERT) \
  OP(TRANSPOSE,   "transpose",         1, K_LAYOUT,  shape_transpose,    grad_transpose,    eval_transpose,    cg_transpose, NAN, 0) \
  OP(BROADCAST,   "broadcast_to",      1, K_LAYOUT,  shape_broadcast,    grad_broadcast,    eval_broadcast,    gen_elementwise, NAN, F_ELEMENTWISE | F_CONVERT) \
  OP(SLICE,       "slice",             1, K_LAYOUT,  shape_slice,        grad_slice,        eval_slice,        gen_slice, NAN, 0) \
  OP(UNSLICE,     "unslice",           1, K_LAYOUT,  shape_unslice,      grad_unslice,      eval_unslice,      gen_unslice, NAN, 0) \
  OP(CONCAT,      "concat",           -1, K_LAYOUT,  shape_concat,       grad_concat,       eval_concat,       cg_concat, NAN, 0) \
  OP(ONE_HOT,     "one_hot",           1, K_LAYOUT,  shape_one_hot,      grad_none,         eval_one_hot,      cg_one_hot, NAN, F_NO_GRAD) \
  /* embedding lookup (table [V, D], ids i32 [...]) -> [..., D]: row ids[i] \
   * of the table, a zero row for an id outside [0, V), as one_hot */ \
  OP(GATHER,      "gather",            2, K_LAYOUT,  shape_gather,       grad_gather,       eval_gather,       cg_gather, NAN, F_PARALLEL) \
  /* gather's adjoint (updates [..., D], ids [...]) -> [depth, D]: row \
   * ids[i] += updates[i], ids in order (the same bits for any thread \
   * count); out-of-range ids add nothing */ \
  OP(SCATTER_ADD, "scatter_add",       2, K_LAYOUT,  shape_scatter_add,  grad_scatter_add,  eval_scatter_add,  cg_scatter_add, NAN, F_PARALLEL) \
  /* issue 24's index ops.  take (x, idx i32) -> idx's shape: element \
   * idx[i] of x in row-major order, 0 for an index outside [0, size(x)); \
   * every gather, tile, repeat, sort and top_k is a take by an index \
   * tensor computed from constants and the operands (tensor.c), so one \
   * gradient rule serves them all: take_add (u, idx) -> a.to, zeros \
   * with u[i] added at idx[i], indices in order (scatter_nd too) */ \
  OP(TAKE,        "take",              2, K_LAYOUT,  shape_take,         grad_take,         eval_take,         cg_take, NAN, 0) \
  OP(TAKE_ADD,    "take_add",          2, K_LAYOUT,  shape_take_add,     grad_take_add,     eval_take_add,     cg_take_add, NAN, 0) \
  /* the positions that sort a.axis ascending, stable (ties in index \
   * order): i32; descending is the argsort of -x, which keeps TF's \
   * tie order (top_k's: the lower index first) */ \
  OP(ARGSORT,     "argsort",           1, K_AXIS,    shape_argsort,      grad_none,         eval_argsort,      cg_argsort, NAN, F_NO_GRAD) \
  /* running sum along a.axis (tf.cumsum) */ \
  OP(CUMSUM,      "cumsum",            1, K_AXIS,    shape_cumsum,       grad_cumsum,       eval_cumsum,       cg_cumsum, NAN, 0) \
  /* running product along a.axis (tf.cumprod): cumsum's code, times */ \
  OP(CUMPROD,     "cumprod",           1, K_AXIS,    shape_cumsum,       grad_cumprod,      eval_cumsum,       cg_cumsum, NAN, 0) \
  /* losses with numerically stable fused forms */ \
  OP(SOFTMAX_CE,  "softmax_cross_entropy", 2, K_LOSS, shape_softmax_ce,   grad_softmax_ce,   eval_softmax_ce,   cg_softmax_ce, NAN, 0) \
  OP(SIGMOID_CE,  "sigmoid_cross_entropy", 2, K_LOSS, shape_sigmoid_ce,   grad_sigmoid_ce,   eval_sigmoid_ce,   gen_elementwise, NAN, F_ELEMENTWISE) \
  /* 2-D windows over NHWC tensors (a.win): convolution is im2col + matmul, \
   * built by the conv2d sugar in call.c; col2im is im2col's adjoint */ \
  OP(IM2COL,      "im2col",            1, K_WINDOW,  shape_im2col,       grad_im2col,       eval_im2col,       cg_im2col, NAN, F_PARALLEL) \
  OP(COL2IM,      "col2im",            1, K_WINDOW,  shape_col2im,       grad_col2im,       eval_col2im,       cg_col2im, NAN, F_PARALLEL) \
  OP(MAXPOOL,     "maxpool2d",         1, K_WINDOW,  shape_pool,         grad_maxpool,      eval_pool,         cg_pool, NAN, F_PARALLEL) \
  /* (x, gy) -> dx: gy routed to the first maximum of each window */ \
  OP(MAXPOOL_GRAD, "maxpool2d_grad",    2, K_WINDOW,  shape_maxpool_grad, grad_maxpool_grad, eval_maxpool_grad, cg_maxpool_grad, NAN, F_PARALLEL) \
  OP(AVGPOOL,     "avgpool2d",         1, K_WINDOW,  shape_pool,         grad_avgpool,      eval_pool,         cg_pool, NAN, F_PARALLEL) \
  OP(AVGPOOL_GRAD, "avgpool2d_grad",    1, K_WINDOW,  shape_col2im,       grad_avgpool_grad, eval_avgpool_grad, cg_avgpool_grad, NAN, 0) \
  /* train vs inference: train_step computes the first operand, forward and \
   * eval the second; gradients are the train step's, so they flow into the \
   * first */ \
  OP(TRAIN_SELECT, "train_select",      2, K_SELECT,  shape_train_select, grad_train_select, eval_train_select, cg_train_select, NAN, F_MODE) \
  /* (x[, step]) -> keep ? 1/(1-rate) : 0 per element of x's shape, from the \
   * counter-based generator at (seed, step, index); autodiff appends the \
   * step counter */ \
  OP(DROPOUT_MASK, "dropout_mask",     -1, K_RANDOM,  shape_dropout_mask, grad_none,         eval_dropout_mask, cg_dropout_mask, NAN, F_NO_GRAD | F_RANDOM | F_PARALLEL) \
  /* ([step]) -> a.to-shaped draws, element i from the counter-based \
   * generator at (seed, step, i): normal (a.lo mean, a.hi stddev), uniform \
   * in [a.lo, a.hi), normal redrawn beyond 2 stddev (eval.c says how); \
   * constants with respect to every parameter; optimizer.c appends the \
   * step counter, as for dropout_mask */ \
  OP(RANDOM_NORMAL, "random_normal",   -1, K_RANDOM,  shape_random,       grad_none,         eval_random,       cg_random, NAN, F_NO_GRAD | F_RANDOM | F_PARALLEL) \
  OP(RANDOM_UNIFORM, "random_uniform", -1, K_RANDOM,  shape_random,       grad_none,         eval_random,       cg_random, NAN, F_NO_GRAD | F_RANDOM | F_PARALLEL) \
  OP(TRUNCATED_NORMAL, "truncated_normal", -1, K_RANDOM, shape_random,    grad_none,         eval_random,       cg_random, NAN, F_NO_GRAD | F_RANDOM | F_PARALLEL) \
  /* loops (compiler.h: Scan); autodiff differentiates a loop as a whole \
   * at its loop_end, so their rules are never called on their own */ \
  OP(CARRY,       "carry",             1, K_LOOP,    shape_carry,        grad_loop,         eval_loop_node,    cg_loop_node, NAN, F_LOOP) \
  OP(SCAN_SLICE,  "scan_slice",        1, K_LOOP,    shape_scan_slice,   grad_loop,         eval_loop_node,    cg_loop_node, NAN, F_LOOP) \
  OP(LOOP_END,    "loop_end",         -1, K_LOOP,    shape_loop_end,     grad_loop,         eval_loop_node,    cg_loop_node, NAN, F_LOOP) \
  OP(SCAN_STACK,  "scan_stack",        1, K_LOOP,    shape_scan_stack,   grad_loop,         eval_loop_node,    cg_loop_node, NAN, F_LOOP) \
  OP(SCAN_LAST,   "scan_last",         1, K_LOOP,    shape_scan_last,    grad_loop,         eval_loop_node,    cg_loop_node, NAN, F_LOOP) \
  /* (y, x) -> d sum(y) / dx, the model language's grad(y, x): autodiff \
   * replaces it by the backward nodes of gradients() before anything \
   * evaluates or differentiates the graph */ \
  OP(GRAD,        "grad",              2, K_LOWERED, shape_grad,         grad_none,         eval_lowered,      gen_none, NAN, F_LOWERED)
