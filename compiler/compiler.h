/*
 * compiler.h - the compiler's one internal header, in sections by the file
 * that defines them (chibicc.h style).  Nothing here is public: the public
 * API lives in include/gradc.h.
 *
 * Data flows one way, through compile() (compile.c):
 *   source -> lex -> parse (+ shape rules) -> canon -> hoist -> grad() ->
 *   autodiff -> optimizer update -> fold -> simplify -> cse -> dce -> fuse ->
 *   plan -> codegen
 * Everything of one compilation lives in one Arena freed at once.
 *
 * What the compiler shares with the runtime and with the code it
 * generates - element types, initializer kinds, the outside functions,
 * the descriptor - is runtime/abi.h's, included here; the runtime itself
 * (runtime.h) is seen only by the files that hand it a model: the JIT's
 * model (jitmodel.c) and the .so header (header.c), which asks it for the
 * sizes it documents.
 */
#ifndef GRADC_COMPILER_H
#define GRADC_COMPILER_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "abi.h"
#include "gradc.h"
#include "ops.h"

/* Our own bugs abort with file:line; user mistakes are diagnostics. */
#define GRADC_ASSERT(c)                                                        \
  do {                                                                         \
    if (!(c)) gradc_die(__FILE__, __LINE__, #c);                               \
  } while (0)
_Noreturn void gradc_die(const char *file, int line, const char *what);

/* Limits against abuse: each one is a clear error, never an overflow. */
enum {
  MAX_RANK = ABI_MAX_RANK,       /* tensor rank */
  MAX_SYMS = ABI_MAX_SYMS,       /* symbolic dimension names per model */
  MAX_DEPTH = 200,               /* expression nesting */
  MAX_OPERANDS = 64,             /* operands of a variadic op (concat) */
  /* Tokens and nodes of one model file: what bounds the compiler's
   * memory (64 bytes a token, about 1 KB a node with its operands and
   * name) at about 1 GB whatever the file holds; real models have a few
   * thousand of each, the largest literal lists two tokens an element. */
  MAX_TOKENS = 4 << 20,
  MAX_PARSE_NODES = 512 << 10,
};
#define MAX_SOURCE_BYTES (16u << 20)     /* model file size */
#define MAX_ELEMENTS ((int64_t)1 << 40)  /* elements of one tensor */

/* ---------------------------------------------------------------- arena.c */

typedef struct Arena Arena;

/* Allocation failure longjmps to the handler installed with arena_on_oom:
 * one reporting place instead of a NULL check at every call. */
Arena *arena_new(void);
void arena_free(Arena *a);                     /* NULL is fine */
void *arena_alloc(Arena *a, size_t size);      /* zeroed, 16-byte aligned */
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void arena_on_oom(Arena *a, jmp_buf *jb);
size_t arena_bytes(const Arena *a);
/* Test hook: make the Nth allocation from now fail (0 = never). */
void arena_fail_after(Arena *a, long n);

/* ----------------------------------------------------------------- diag.c */

typedef struct Source {
  const char *name;      /* file name as given by the user */
  const char *text;      /* NUL-terminated copy */
  size_t len;            /* bytes, may contain NULs that the lexer rejects */
} Source;

typedef struct Loc {
  const Source *src;
  int line, col;         /* 1-based */
  int len;               /* bytes to underline (>= 1) */
  size_t off;            /* byte offset of the first character */
} Loc;

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

typedef struct Diag {
  DiagLevel level;
  Loc loc;
  char *msg;
  struct Diag *next;
} Diag;

typedef struct Diags {
  Diag *first, *last;
  int errors, warnings;
} Diags;

void diag_add(Arena *a, Diags *d, DiagLevel level, Loc loc, const char *fmt,
              ...) __attribute__((format(printf, 5, 6)));
void diag_vadd(Arena *a, Diags *d, DiagLevel level, Loc loc, const char *fmt,
               va_list ap);
/* file:line:col: error: msg, the source line, a caret under the token. */
void diag_print(FILE *out, const Diags *d);
void diag_format(FILE *out, const Diag *g);
int edit_distance(const char *a, const char *b);

/* ------------------------------------------------------------------ lex.c */

typedef enum {
  T_EOF, T_NEWLINE, T_IDENT, T_INT, T_FLOAT, T_PUNCT,
} TokenKind;

/* 64 bytes: a model file can hold a token per byte or two, and every
 * token stays in memory until the compilation ends. */
typedef struct Token {
  TokenKind kind;
  int len;
  const char *text;      /* points into the source */
  Loc loc;
  double fval;           /* T_INT and T_FLOAT: the value */
  struct Token *next;
} Token;

/* Returns the token list, or NULL after adding an error to d. */
Token *lex(Arena *a, const Source *src, Diags *d);
bool tok_is(const Token *t, const char *s);

/* ---------------------------------------------------------------- graph.c */

/* DType (DT_F32, ...) is abi.h's: the numbers in descriptors and gradc.h. */

/* A dimension is n * sym, where sym 0 means the constant 1 and sym k > 0 is
 * the k-th symbolic name of the graph (e.g. batch).  This covers what reshape
 * needs ([batch,28,28] -> [28*... ] flattens to 784*batch) without sentinels. */
typedef struct Dim {
  int64_t n;
  int sym;
} Dim;

typedef struct Shape {
  int rank;
  Dim d[MAX_RANK];
} Shape;

typedef enum {
#define OP(e, name, arity, kind, shape, grad, eval, gen, identity, flags) OP_##e,
  GRADC_OPS(OP)
#undef OP
  OP_COUNT
} OpKind;

typedef enum {
  K_LEAF, K_BINARY, K_UNARY, K_TERNARY, K_MATMUL, K_AXIS, K_REDUCE,
  K_LAYOUT, K_LOSS, K_UPDATE, K_WINDOW, K_SELECT, K_RANDOM, K_LOOP, K_LOWERED,
} OpClass;

/* Properties of an op, one column of the table: see ops.h. */
enum {
  F_COMMUTATIVE = 1 << 0,
  F_NO_GRAD = 1 << 1,        /* gradients stop here by definition */
  F_ELEMENTWISE = 1 << 2,
  F_REDUCTION = 1 << 3,
  F_PARALLEL = 1 << 4,
  F_VIEW = 1 << 5,
  F_CONVERT = 1 << 6,
  F_INVOLUTION = 1 << 7,
  F_IMMEDIATE = 1 << 8,
  F_NAMED = 1 << 9,
  F_PERSISTENT = 1 << 10,
  F_EFFECT = 1 << 11,
  F_MODE = 1 << 12,
  F_RANDOM = 1 << 13,
  F_LOOP = 1 << 14,
  F_LOWERED = 1 << 15,
};

typedef struct Graph Graph;
typedef struct Node Node;
typedef struct AD AD;
typedef struct Eval Eval;
typedef bool ShapeFn(Graph *g, Node *n);
/* Vector-Jacobian rule: given node n and the gradient gy of the loss with
 * respect to n, add the gradients of n's operands (ad_accum). */
typedef void GradFn(AD *ad, Node *n, Node *gy);
typedef void EvalFn(Eval *e, const Node *n);

typedef struct OpInfo {
  const char *name;
  int arity;
  OpClass kind;
  ShapeFn *shape;
  GradFn *grad;
  EvalFn *eval;
  double identity;       /* x op identity == x; NAN: none */
  unsigned flags;
} OpInfo;

extern const OpInfo op_info[OP_COUNT];

/* Parameter initializers, Keras definitions (keras/initializers): the kind
 * (InitKind, INIT_ZEROS, ...) is abi.h's, since descriptors carry it. */
typedef struct Init {
  InitKind kind;
  double a, b;           /* constant v; uniform lo,hi; normal mean,std */
} Init;

extern const char *const init_names[INIT_COUNT];

/* A 2-D window over an NHWC tensor (im2col, col2im, pooling): kernel size,
 * strides and dilation per spatial axis, and explicit zero padding (top,
 * bottom, left, right); padding=same is turned into numbers by the parser,
 * as TF computes it. */
typedef struct Window {
  int64_t k[2], stride[2], dil[2], pad[4];
} Window;

/* Node attributes: a plain struct, each op reads the fields it owns.  One
 * row per field: type, name, array suffix, and how two nodes' values of it
 * are compared when CSE asks whether they compute the same thing
 * (graph_same_node in rewrite.c expands the same rows, so a field cannot be
 * added without saying how it is compared):
 *   ATTR_EQ      ==, a scalar
 *   ATTR_BYTES   memcmp, an integer array or a struct of int64_t (no padding)
 *   ATTR_SHAPE   shape_eq
 *   ATTR_INIT    kind and both numbers (Init has padding)
 *   ATTR_VALUES  the node's elements by content when either node has them */
#define GRADC_ATTRS(X) \
  X(int,      axis,     ,           ATTR_EQ)     /* softmax, log_softmax, argmax, concat */ \
  X(uint32_t, axes,     ,           ATTR_EQ)     /* reductions: bit i = reduce axis i */ \
  X(bool,     keepdims, ,           ATTR_EQ) \
  X(int,      perm,     [MAX_RANK], ATTR_BYTES)  /* transpose */ \
  X(Shape,    to,       ,           ATTR_SHAPE)  /* reshape, broadcast_to target; size */ \
  X(int64_t,  begin,    [MAX_RANK], ATTR_BYTES)  /* slice, unslice */ \
  X(int64_t,  end,      [MAX_RANK], ATTR_BYTES) \
  X(int64_t,  step,     [MAX_RANK], ATTR_BYTES) \
  X(double,   lo,       ,           ATTR_EQ)     /* clip bounds */ \
  X(double,   hi,       ,           ATTR_EQ) \
  X(double,   alpha,    ,           ATTR_EQ)     /* leaky_relu's slope below 0 */ \
  X(bool,     ta,       ,           ATTR_EQ)     /* matmul: operand a / b transposed (last two axes) */ \
  X(bool,     tb,       ,           ATTR_EQ) \
  X(DType,    dtype,    ,           ATTR_EQ)     /* cast target */ \
  X(int64_t,  depth,    ,           ATTR_EQ)     /* one_hot */ \
  X(Init,     init,     ,           ATTR_INIT)   /* param */ \
  X(double *, values,   ,           ATTR_VALUES) /* const and INIT_VALUES data, row-major */ \
  X(Window,   win,      ,           ATTR_BYTES)  /* im2col, col2im, pooling */ \
  X(int64_t,  seed,     ,           ATTR_EQ)     /* dropout_mask: its stream is rng_stream(seed, "dropout") */ \
  X(int,      owner,    ,           ATTR_EQ)     /* assign: index in g->steps of the step that applies it */ \
  X(int,      loop,     ,           ATTR_EQ)     /* every node: the scan whose body it is in (1-based g->scans), 0: none */ \
  X(int,      slot,     ,           ATTR_EQ)     /* carry: its operand of the loop_end; scan_stack, scan_last: the operand they read */

typedef struct Attrs {
#define ATTR(type, name, array, compare) type name array;
  GRADC_ATTRS(ATTR)
#undef ATTR
} Attrs;

#define ATTR(type, name, array, compare) +1
enum { ATTR_COUNT = 0 GRADC_ATTRS(ATTR) };
#undef ATTR

enum {
  N_INPUT = 1 << 0,
  N_PARAM = 1 << 1,
  N_OUTPUT = 1 << 2,
  N_LOSS = 1 << 3,
  N_METRIC = 1 << 4,
  N_USED = 1 << 5,       /* some node reads it (for the unused-param warning) */
  N_WEAK = 1 << 6,       /* a literal scalar: takes its partner's dtype */
  N_GRAD = 1 << 7,       /* the full gradient of a parameter */
  N_FLOAT_LIT = 1 << 8,  /* a literal written with a fraction or exponent */
  N_ADOPTED = 1 << 9,    /* a weak literal whose dtype a consumer has fixed */
};

struct Node {
  int id;                /* index in g->nodes: topological order */
  OpKind op;
  DType dtype;
  Shape shape;
  int nsrc;
  Node **src;
  Attrs a;
  const char *name;      /* declared or bound name, or NULL */
  unsigned flags;
  Loc loc;               /* the token that made it */
  /* Backward and update nodes: the forward node and the rule that made them. */
  Node *fwd;
  const char *rule;
  /* Set by fuse(): the consumer whose loop computes this node, and the node
   * whose buffer holds its value (itself, an alias, NULL for none). */
  Node *inlined_into;
  Node *storage;
  /* Set by graph_replace: the node that now stands for this one. */
  Node *moved;
};

typedef enum { OPT_SGD, OPT_RMSPROP, OPT_ADAM, OPT_ADAGRAD, OPT_COUNT } OptKind;

/* A model's optimizer settings (defaults and ranges: opt_info, optimizer.c). */
/* A learning-rate schedule of the optimizer (Keras'
 * tf.keras.optimizers.schedules): lr as a function of the step counter,
 * computed inside the compiled step (optimizer.c, opt_schedule_*). */
typedef enum {
  SCHED_NONE, SCHED_EXPONENTIAL, SCHED_INVERSE_TIME, SCHED_POLYNOMIAL, SCHED_PIECEWISE,
  SCHED_COSINE, SCHED_COUNT
} ScheduleKind;

enum { SCHED_MAX_VALUES = 64 };

typedef struct LrSchedule {
  ScheduleKind kind;
  double initial, decay_steps, rate, alpha, end, power;
  bool staircase;
  /* cosine's linear warm-up from initial to warmup_target */
  double warmup_target, warmup_steps;
  bool warmup;
  /* piecewise: values[i] up to boundaries[i] (inclusive), then the last */
  double boundaries[SCHED_MAX_VALUES - 1], values[SCHED_MAX_VALUES];
  int nvalues;
  Loc loc;
} LrSchedule;

typedef struct Optimizer {
  OptKind kind;
  LrSchedule sched;      /* kind SCHED_NONE: lr is constant */
  double lr, momentum, rho, eps, beta1, beta2, initial_accumulator;
  /* Keras' gradient clipping (every optimizer): 0 = none */
  double clipnorm, global_clipnorm, clipvalue;
  /* decoupled weight decay (Keras 2.11+ weight_decay, AdamW): 0 = none */
  double weight_decay;
  bool nesterov, centered;
  Loc loc;
} Optimizer;

typedef struct Binding {
  const char *name;
  Node *node;
} Binding;

/* A model's own state update (batch norm's moving statistics): after the
 * train step, state <- value.  Written `update NAME = expr`. */
typedef struct StateUpdate {
  Node *state, *value;
  /* A moving average, value = keep * state + add: several may update one
   * state (a function's calls), chained per step in optimizer.c. */
  Node *add;
  double keep;
} StateUpdate;

typedef struct Grad {
  Node *param;
  Node *grad;            /* d(loss)/d(param), same shape */
} Grad;

enum { MAX_STEPS = 32 };       /* functions are bits of a 64-bit mask (fuse.c) */

/* One train statement: `train LOSS [of PATTERN, ...] with OPT(...) [as NAME]`.
 * Compiled to one function that computes the loss and every output and
 * metric in training mode and applies the updates of this step: its
 * optimizer's update of its parameters and slots, and the model's state
 * updates that depend on what its loss computes (optimizer.c). */
typedef struct TrainStep {
  const char *name;      /* `as NAME`; else "train" alone, or the loss's name */
  Node *loss;
  Optimizer opt;
  /* `of` globs (fnmatch) over parameter names, and the parameters they
   * match (parse.c); none: every parameter the loss depends on. */
  const char **patterns;
  Loc *pattern_locs;
  int npatterns;
  Node **params;
  int nparams;
  /* The prefix of the state this step owns (slots, hyperparameters, its
   * counter): "" when the model has one step (the names gradc always
   * used), else "NAME/". */
  const char *prefix;
  /* After autodiff: the gradient of the loss for each trained parameter. */
  Grad *grads;
  int ngrads;
  Loc loc;
} TrainStep;

/* `schedule critic * 5, generator`: the order in which `gradc train`
 * runs the steps, repeated until the data runs out. */
typedef struct ScheduleEntry {
  int step;              /* index in g->steps */
  int times;
} ScheduleEntry;

/* A post-update constraint on a parameter (Keras' kernel_constraint;
 * WGAN's weight clipping): after each update, the parameter's value is
 * clipped to [lo, hi] inside the compiled step. */
typedef struct Constraint {
  Node *param;
  double lo, hi;
  Loc loc;
} Constraint;

/* A weight penalty added to the loss of every train step that trains
 * param (Keras' kernel_regularizer): l1 * sum(|w|) + l2 * sum(w^2). */
typedef struct Regularizer {
  Node *param;
  double l1, l2;
  Loc loc;
} Regularizer;

/* A loop over one axis (a scan, like JAX's lax.scan): its body is the
 * nodes whose a.loop is its number, contiguous in g->nodes once sorted
 * (graph_sort keeps them so), between the carries and scan_slices it
 * starts with and its one loop_end:
 *
 *   c  = carry(init)          the carried value: init at the first
 *                             iteration, then the loop_end's operand
 *                             c.slot of the iteration before
 *   xt = scan_slice(xs)       xs at the iteration's index along a.axis
 *   ...                       the body, once per iteration
 *   e  = loop_end(n0, .., s0, ..)   the carries' next values (the first
 *                             a.slot operands), then the values stacked
 *   ys = scan_stack(e)        after the loop: operand a.slot of e at
 *                             every index, stacked along a.axis
 *   hT = scan_last(e)         after the loop: the carry a.slot's last value
 *
 * A node reading a carry, a slice or another body node is in the body; one
 * that reads only values from outside is computed once, outside (the
 * loop-invariant parts of a body).  Iteration i has index i, or len-1-i in
 * a reverse loop: the gradient of a loop is the reverse loop over the same
 * indices (autodiff.c), which reads the values of the forward body it
 * needs from stacks the forward loop saves. */
typedef struct Scan {
  Dim len;               /* iterations: the sliced axis' length */
  bool reverse;
  int fwd;               /* a gradient loop: the loop it differentiates */
  Loc loc;
} Scan;

struct Graph {
  Arena *arena;
  Diags *diags;
  const Source *src;
  const char *model_name;      /* file stem, used for symbols and summaries */
  Node **nodes;
  int nnodes, cap;
  const char *sym[MAX_SYMS + 1];  /* symbolic dim names, 1-based */
  int nsym;
  Binding *outputs, *metrics;
  int noutputs, nmetrics;
  /* The train statements, in file order (function 1 + i of codegen). */
  TrainStep *steps;
  int nsteps;
  ScheduleEntry *schedule;     /* none: each step once, in file order */
  int nschedule;
  Constraint *constraints;
  int nconstraints;
  Regularizer *regularizers;
  int nregularizers;
  const char *stage;           /* the last stage that ran: parse, grad */
  bool reuse_memory;           /* set by optimize(): buffers may share bytes */
  bool stored;                 /* set by fuse(): storage and inlining decided */
  int canon_rewrites;          /* what canon changed before autodiff (--stats) */
  /* Declared state (`state` statements, batch_norm) and its updates. */
  StateUpdate *updates;
  int nupdates, capupdates;
  /* Loops, 1-based in a.loop; cur_loop: the loop whose body is being built
   * (new carries, slices, loop_ends and random values go there). */
  Scan *scans;
  int nscans, cur_loop;
  /* grad(y, x) expressions the autodiff stage replaced by backward nodes:
   * a loss that has them is differentiated twice (gradc check says so). */
  int ngrad_exprs;
  /* The update stage sums each gradient over data-parallel replicas
   * (an allreduce node between it and the update): CompileOptions. */
  bool data_parallel;
};

extern const char *const dtype_names[DT_COUNT];
size_t dtype_size(DType t);
bool dtype_is_float(DType t);
/* Whether v is a value of t without overflow (a literal's check: an i32
 * literal past 2^31 would wrap, an f32 one past FLT_MAX become inf), and
 * t's range in words for the message. */
bool dtype_holds(DType t, double v);
const char *dtype_range(DType t);

Graph *graph_new(Arena *a, Diags *d, const Source *src);
/* Checked constructor: computes the shape with the op's rule; on a rule
 * violation it adds a diagnostic at loc and returns NULL. */
Node *graph_node(Graph *g, OpKind op, Node **src, int nsrc, const Attrs *a,
                 Loc loc);
Node *graph_leaf(Graph *g, OpKind op, const char *name, DType t,
                 const Shape *s, Loc loc);
/* A scalar constant v of dtype t (what the backward and update stages
 * multiply by). */
Node *graph_scalar(Graph *g, double v, DType t, Loc loc);
/* The step counter a random op (F_RANDOM) draws for: its last operand when
 * that is an i32 scalar (optimizer.c appends it; dropout_mask's x is a
 * float, the random_* ops have no other operand), else NULL. */
const Node *graph_random_step(const Node *n);
void graph_add_output(Graph *g, Binding **list, int *n, const char *name,
                      Node *node);
void graph_add_update(Graph *g, Node *state, Node *value);
/* A STATE node the model declares (not an optimizer slot): non-trainable. */
bool is_model_state(const Node *n);
int graph_sym(Graph *g, const char *name);   /* intern, 0 when full */
/* mark[i] = 1 for every node roots need, else 0; of a train_select only
 * the operand of the function being run (a train step, or forward/eval). */
void graph_mark_needed(const Graph *g, Node *const *roots, int nroots, bool train,
                       unsigned char *mark);
/* The compiled functions: 0 is forward (outputs, metrics and every loss, in
 * inference mode), 1 + i runs train step i (its assigns, every output and
 * metric and its loss, in training mode).  graph_function_roots writes
 * function fn's roots into roots (room for graph_max_roots) and returns
 * how many; graph_function_mark marks what it computes. */
int graph_nfunctions(const Graph *g);
int graph_max_roots(const Graph *g);
int graph_function_roots(const Graph *g, int fn, Node **roots);
void graph_function_mark(const Graph *g, int fn, unsigned char *mark);
/* The step named name (NULL: the only one), or NULL. */
const TrainStep *graph_step(const Graph *g, const char *name);
bool graph_error(Graph *g, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A new loop of len iterations; returns its number (a.loop). */
int graph_new_scan(Graph *g, Dim len, bool reverse, Loc loc);
/* The loop_end of loop l, the first node of its body (ids: a sorted graph),
 * and the carry of slot k (NULL if DCE dropped it). */
Node *graph_loop_end(const Graph *g, int l);
int graph_loop_begin(const Graph *g, int l);
Node *graph_loop_carry(const Graph *g, int l, int slot);
/* Stacks v at loop_end e (once): returns its operand's slot. */
int graph_loop_add(Graph *g, Node *e, Node *v);

/* Shapes */
bool shape_eq(const Shape *a, const Shape *b);
bool dim_eq(Dim a, Dim b);
bool dim_is_one(Dim a);
/* Element count with symbols bound to 1; -1 on overflow past MAX_ELEMENTS. */
int64_t shape_static_count(const Shape *s);
/* "[batch,784]" into buf; returns buf. */
char *shape_str(const Graph *g, const Shape *s, char *buf, size_t n);
char *dim_str(const Graph *g, Dim d, char *buf, size_t n);
enum { SHAPE_STR_MAX = 160 };

/* ---------------------------------------------------------------- shape.c */

#define OP(e, name, arity, kind, shape, grad, eval, gen, identity, flags) ShapeFn shape;
GRADC_OPS(OP)
#undef OP
/* numpy broadcasting of two shapes; false (and a diagnostic) if impossible */
bool shape_broadcast2(Graph *g, const Shape *a, const Shape *b, Shape *out,
                      Loc loc, const char *opname);
/* Output rows and columns of window w over an NHWC shape x; false when the
 * window does not fit the padded input. */
bool window_out(const Window *w, const Shape *x, int64_t *oh, int64_t *ow);
/* "+" for OP_ADD and so on, or the op's name. */
const char *op_symbol(OpKind op);

/* ---------------------------------------------------------------- canon.c */

/* Forward rewrites that choose a stabler gradient rule (log of softmax,
 * the written-out cross-entropy), run before autodiff; returns how many. */
int canon(Graph *g);

/* ---------------------------------------------------------------- hoist.c */

/* The products of a loop's slice of a sequence by an outside weight, as
 * one product before the loop; returns how many. */
int hoist(Graph *g);

/* ------------------------------------------------------------- autodiff.c */

/* out[i] = d(loss)/d(targets[i]), or NULL where loss does not depend on
 * it: appends the backward nodes to g (see the essay in autodiff.c).  Any
 * scalar loss and any nodes of g, backward ones included.  False after a
 * diagnostic. */
bool gradients(Graph *g, Node *loss, Node *const *targets, int n, Node **out);
/* The backward stage: each train step's gradients into its grads.  False
 * after a diagnostic. */
bool autodiff(Graph *g);
void ad_accum(AD *ad, Node *x, Node *dx);
#define OP(e, name, arity, kind, shape, grad, eval, gen, identity, flags) GradFn grad;
GRADC_OPS(OP)
#undef OP

/* ------------------------------------------------------------- gradexpr.c */

/* The stage before autodiff: every grad(y, x) node replaced by the backward
 * nodes of gradients() (see gradexpr.c); g->ngrad_exprs counts them.  False
 * after a diagnostic (y does not depend on x). */
bool lower_grads(Graph *g);

/* ------------------------------------------------------------ optimizer.c */

enum { OPT_MAX_HYPERS = 8, OPT_MAX_SWITCHES = 1 };

/* RANGE_CLIP: positive when given; 0, the default, is none.  RANGE_OPTIONAL:
 * not negative, 0 (the default) is none (weight_decay). */
typedef enum {
  RANGE_ANY, RANGE_POSITIVE, RANGE_NONNEGATIVE, RANGE_UNIT, RANGE_CLIP, RANGE_OPTIONAL
} HyperRange;

/* A numeric setting: its name (the model file's key, the API's, and the
 * state optimizer/NAME when the update reads it at run time), Keras'
 * spelling, where it lives in Optimizer, Keras' default, its valid range
 * (RANGE_UNIT: [0, 1)). */
typedef struct OptHyper {
  const char *name, *alias;
  size_t field;
  double keras_default;
  HyperRange range;
} OptHyper;

typedef struct OptBuild OptBuild;
/* One parameter's update: returns its new value, sets its slots. */
typedef Node *OptUpdateFn(OptBuild *b, Node *param, Node *grad);

/* One row per optimizer; boolean switches (nesterov) change the update's
 * structure, so they are compile-time only. */
typedef struct OptInfo {
  const char *name;
  OptUpdateFn *update;
  int nhyper;
  OptHyper hyper[OPT_MAX_HYPERS];
  const char *switches[OPT_MAX_SWITCHES];
} OptInfo;

extern const OptInfo opt_info[OPT_COUNT];
double opt_hyper_value(const Optimizer *o, const OptHyper *h);
void opt_set_hyper(Optimizer *o, const OptHyper *h, double v);

/* One row per schedule: its name in model files, Keras' long name (an
 * alias), the builder of lr(step) in the compiled step. */
typedef struct ScheduleInfo {
  const char *name, *alias;
} ScheduleInfo;
extern const ScheduleInfo sched_info[SCHED_COUNT];
/* The rate optimizer/lr holds for a schedule (its peak: the initial rate,
 * cosine's warmup_target, piecewise's first value); see optimizer.c. */
double opt_schedule_nominal(const LrSchedule *s);

/* The stage after autodiff: appends the optimizer's update of every
 * parameter and slot and the ASSIGNs that close each train step (see the
 * essay in optimizer.c). */
void opt_update(Graph *g);

/* --------------------------------------------------- graph.c: initializers */

/* The initial values of a PARAM or STATE node (count elements), as doubles
 * rounded to the node's dtype: runtime/init.c's init_fill with the node's
 * initializer, fans and name, as every model instance computes them. */
void init_values(const Node *n, uint64_t seed, double *out, int64_t count);
/* Keras' _compute_fans of a parameter shape. */
int64_t fan_in(const Shape *s);
int64_t fan_out(const Shape *s);

/* ----------------------------------------------------------------- eval.c */

/* The reference evaluator (see eval.c): doubles, one node at a time. */
Eval *eval_new(const Graph *g);              /* NULL when out of memory */
void eval_free(Eval *e);                     /* NULL is fine */
/* Binds a symbolic dimension (e.g. "batch") to value >= 1 and sizes the
 * buffers; false when out of memory or the value is out of range. */
bool eval_bind(Eval *e, const char *sym, int64_t value);
void eval_init(Eval *e, uint64_t seed);      /* params and optimizer state */
double *eval_data(Eval *e, const Node *n);   /* a node's values */
int64_t eval_count(const Eval *e, const Node *n);
void eval_run(Eval *e, Node *const *roots, int nroots);
/* train_select takes its first operand in train mode (the default, and what
 * gradients are of), its second in inference mode (eval_forward). */
void eval_set_train(Eval *e, bool train);
/* eval_run(root) when only `changed` (a leaf) has new values since the last
 * run that computed root: recomputes only what depends on it. */
void eval_rerun(Eval *e, Node *root, const Node *changed);
void eval_function(Eval *e, int fn);         /* graph_function_roots' fn */
void eval_forward(Eval *e);                  /* outputs, metrics, losses */
void eval_step(Eval *e, int step);           /* train step `step` and its updates */

#define OP(e, name, arity, kind, shape, grad, eval, gen, identity, flags) EvalFn eval;
GRADC_OPS(OP)
#undef OP

/* -------------------------------------------------------------- rewrite.c */

/* Makes new_node stand for old: it takes over old's roles (outputs, the
 * loss, the gradient table) at once; operands follow lazily, through
 * graph_resolve, so that a pass replacing many nodes stays linear.  A pass
 * resolves each node before it looks at its operands, and every pass ends
 * with graph_resolve_all. */
void graph_replace(Graph *g, Node *old, Node *new_node);
void graph_resolve(Node *n);
void graph_resolve_all(Graph *g);
/* Drops nodes no root reaches and renumbers the rest in topological order,
 * assignments last; returns how many were removed. */
int graph_dce(Graph *g);
/* The same order without dropping anything: for a stage that gave an
 * existing node a new operand (autodiff's step counter of dropout). */
void graph_sort(Graph *g);
/* Binds the outputs, metrics and loss that name leaf to a new node of
 * their own, reshape(leaf) to its own shape, placed right after leaf (ids
 * renumbered); every operand keeps reading leaf.  Returns the copy. */
Node *graph_root_copy(Graph *g, Node *leaf);
bool graph_same_node(const Node *a, const Node *b);

/* ------------------------------------------------- fold.c, simplify.c, cse.c */

/* Each returns the number of nodes it folded, rewrote or merged. */
int fold(Graph *g);
int simplify(Graph *g);
int cse(Graph *g);
bool eval_constant(const Graph *g, const Node *n, double *out);

/* ----------------------------------------------------------------- fuse.c */

/* Decides which nodes are computed inside their consumer's loop and which
 * values share storage (see fuse.c); run after autodiff, before codegen.
 * enable = false: no fusion, no in-place updates, every value stored. */
int fuse(Graph *g, bool enable);        /* returns the number of nodes fused */

/* ----------------------------------------------------------------- plan.c */

/* Does n own a workspace buffer (not fused away, not an alias, not state)? */
bool plan_is_buffer(const Node *n);
/* Workspace offsets of every buffer for the symbol values sym (offset[i] =
 * SIZE_MAX for nodes without one), sharing bytes between buffers whose live
 * ranges do not meet when reuse is set.  Returns the workspace size, SIZE_MAX
 * on overflow; *naive (may be NULL) gets the sum of all buffers. */
size_t plan_offsets(const Graph *g, const int64_t *sym, bool reuse, size_t *offset, size_t *naive);
/* The workspace with every value of this graph stored and none shared. */
size_t plan_unfused_bytes(const Graph *g, const int64_t *sym);
/* The workspace buffers in node order with their live ranges [begin, end]
 * (schedule positions); out has room for g->nnodes.  -1 when out of memory. */
typedef struct PlanBuffer {
  const Node *node;
  int begin, end;
} PlanBuffer;
int plan_buffers(const Graph *g, PlanBuffer *out);

/* ---------------------------------------------------------------- timing.c */

/* Time per compiler stage (--time-report): rows in the order they were
 * added.  Owned by the caller; every function accepts a NULL report. */
#define TIME_MAX_ROWS 48
typedef struct TimeRow {
  const char *name;        /* a static string */
  double ms;
} TimeRow;
typedef struct TimeReport {
  TimeRow row[TIME_MAX_ROWS];
  int n;
} TimeReport;
double time_now_ms(void);
/* Adds the row name with the time since since_ms; returns now, the start
 * of the next row. */
double time_add(TimeReport *r, const char *name, double since_ms);
/* The table, like clang's -ftime-report: ms and share of the total. */
void time_print(FILE *out, const TimeReport *r, const char *title);

/* ----------------------------------------------------------------- cache.c */

/* The object cache (see cache.c).  Best effort: a false or NULL only ever
 * means "compile it". */
#define CACHE_KEY_LEN 32           /* hex digits of a 128-bit key */
#define CACHE_FORMAT 1             /* of an entry's header; in the key too */
typedef struct Cache {
  char dir[4096];
  long long max_bytes;             /* GRADC_CACHE_MAX, default 512 MiB */
} Cache;
/* False when GRADC_CACHE is off or 0. */
bool cache_enabled(void);
/* The directory and cap from the environment; false: no cache. */
bool cache_open(Cache *c);
/* key (CACHE_KEY_LEN + 1 bytes) from n parts of lens[i] bytes. */
void cache_key(const void *const *parts, const size_t *lens, int n, char *key);
/* The payload stored under key (malloc'd, *len bytes), or NULL: missing,
 * or corrupt or foreign (then removed). */
void *cache_load(const Cache *c, const char *key, size_t *len);
/* Atomically; then evicts least recently used entries over the cap. */
bool cache_store(const Cache *c, const char *key, const void *data, size_t len);
/* gradc cache stats | clear; clear returns the entries removed, -1 when
 * the directory cannot be read. */
bool cache_stats(FILE *out, const Cache *c);
int cache_clear(const Cache *c);

/* -------------------------------------------------------- codegen.c, jit.c */

/* The storage node of n: itself, the operand a reshape aliases, or NULL for
 * nodes without a buffer (scalar and tensor constants, sizes, assigns). */
const Node *cg_buffer_node(const Node *n);

/* The entry points' signature (StepFn) and the outside functions they call
 * are abi.h's.  A module has one per function of graph_function_roots,
 * 0 forward and 1 + s train step s (a descriptor's fns[] in that order). */

typedef struct JitOptions {
  int opt_level;              /* 0..3 */
  bool keep_ir, keep_asm;     /* keep the text for gradc dump */
  const AbiSymbol *symbols;   /* outside functions the code calls (abi.h) */
  int nsymbols;
  /* each kernel calls gradc_profile_mark(its node id) before it starts,
   * and mark(-1) ends a step: the runtime's per-kernel times */
  bool profile;
  /* large independent loop nests become functions run through
   * gradc_parallel(rt, task, buf, sym, work) (runtime/pool.c) */
  bool parallel;
  TimeReport *times;          /* when not NULL: time of each LLVM step */
  /* the object cache (cache.c): off when false or no directory */
  bool use_cache;
} JitOptions;

/* The symbol of function fn (graph_function_roots) in generated code:
 * forward, step_NAME. */
const char *cg_function_name(const Graph *g, int fn);

typedef struct Jit Jit;
/* NULL after writing the reason into err. */
Jit *jit_compile(const Graph *g, const JitOptions *o, char *err, size_t errlen);
/* Function fn's entry point (graph_function_roots: 0 forward, 1 + i train
 * step i); NULL when fn is out of range. */
StepFn *jit_function(const Jit *j, int fn);
StepFn *jit_forward(const Jit *j);
const char *jit_ir(const Jit *j, bool optimised);   /* NULL unless keep_ir */
const char *jit_asm(const Jit *j);                  /* NULL unless keep_asm */
bool jit_from_cache(const Jit *j);                  /* its object came from the cache */
void jit_free(Jit *j);                              /* NULL is fine */

/* --------------------------------------------------------- descriptor.c */

/* A model's descriptor (runtime/abi.h's layout) in memory: what the JIT
 * hands an instance and the emitter writes as constants.  Everything lives
 * in the graph's arena; names and values point into the graph. */
typedef struct Descriptor {
  int64_t *desc;               /* abi_size(desc) fields */
  const char **names;
  int nnames;
  const double **values;       /* INIT_VALUES data */
  int64_t *nvalue;             /* and the number of each one's elements */
  int nvalues;
  int nsteps;                  /* train steps: entry points 1..nsteps */
} Descriptor;
void desc_build(const Graph *g, Descriptor *out);

/* The named tensors in gradc_tensor_info's order (the descriptor's). */
typedef struct DescTensor {
  const char *name;
  AbiKind kind;
  const Node *node;
} DescTensor;
DescTensor *desc_tensors(const Graph *g, int *count);

/* ------------------------------------------------------ emit.c, header.c */

typedef enum { EMIT_SO, EMIT_OBJ, EMIT_ASM, EMIT_LLVM } EmitKind;

typedef struct EmitOptions {
  EmitKind kind;               /* EMIT_SO is EMIT_OBJ here; the CLI links */
  const char *triple;          /* NULL: the host's */
  const char *cpu;             /* NULL: x86-64-v2 on x86-64, else generic;
                                  "native": the host's CPU and features */
  const char *prefix;          /* symbol prefix, a C identifier */
  int opt_level;               /* 0..3 */
  TimeReport *times;           /* when not NULL: time of each LLVM step */
  /* Filled in: what the code was compiled for. */
  char triple_used[128], cpu_used[64];
  bool host_arch;              /* the target's architecture is this machine's */
} EmitOptions;

/* Writes the model's code and descriptor as an object file, assembly or
 * LLVM IR to path.  False after writing the reason into err. */
bool emit_file(const Graph *g, EmitOptions *o, const char *path, char *err, size_t errlen);

/* The C header of a compiled .so: every entry point and tensor documented. */
void header_write(FILE *out, const Graph *g, const EmitOptions *o);

/* ---------------------------------------------------------------- check.c */

/* gradc check: prints a table to out; 0 = every gradient within tol, 1 = a
 * mismatch or nothing to check, 2 = out of memory. */
int check_gradients(const Graph *g, uint64_t seed, int64_t batch, double tol, FILE *out);
/* The number of valid indices where the integer value n is used as one
 * (softmax_cross_entropy's classes, one_hot's depth, gather's rows): the
 * smallest over its uses, through layout ops; 0 when nothing indexes with
 * it.  A symbolic class dimension counts as bound to batch (0: none).
 * gradc check draws integer inputs from it, gradc train checks labels. */
int64_t check_index_bound(const Graph *g, const Node *n, int64_t batch);
/* order 2: also d<v, dL/dparams>/dparams for a random v against finite
 * differences of <v, dL/dparams>, whose nodes it appends to g (gradc
 * check --order 2; the default for a model with grad()).  order 1 is
 * check_gradients. */
int check_gradients_order(Graph *g, uint64_t seed, int64_t batch, double tol, int order,
                          FILE *out);

/* ---------------------------------------------------------------- parse.c */

/* The front end's entry point: source text -> checked graph.  Returns NULL
 * when an error was reported (diagnostics in d).  Warnings do not fail. */
Graph *parse(Arena *a, const Source *src, Diags *d);

/* ---------------------------------------------------------------- names.c */

/* Names to pointers in an arena (see names.c): NULL for a name never put. */
typedef struct NameMap NameMap;
NameMap *names_new(Arena *a);
void *names_get(const NameMap *m, const char *key, size_t len);
/* key must live as long as the map (the arena, the source text). */
void names_put(NameMap *m, const char *key, size_t len, void *value);

/* ---------------------------------------------- parse.c, call.c, layers.c */

/* Parser state, shared by the parts of the front end: parse.c (statements,
 * expressions, literals), call.c (calls, initializers, optimizers) and
 * layers.c (Keras layer sugar). */
typedef struct Sym {
  const char *name;
  Node *node;
  Loc loc;
  struct Sym *next;
  /* The lookup table holds the newest symbol of each name; shadow is the
   * one it hides (a top-level name under a body's, or an enclosing call's
   * local), put back when the body's call ends. */
  struct Sym *shadow;
  int scope;               /* 0: top level; else the call of a body (Parser.scope_id) */
  int seq;                 /* top level: definition order, 1-based */
} Sym;

typedef struct Def Def;     /* a function of the model language (func.c) */

/* A result of a data-dependent size (tensor.c): value, padded along
 * axis, holds count valid entries there; valid is its extent per axis. */
typedef struct Padded {
  Node *value, *valid, *count;
  int axis;
  struct Padded *next;
} Padded;

typedef struct Parser {
  Arena *arena;
  Graph *g;
  Diags *diags;
  Token *tok;
  /* `schedule`'s step names, resolved once every step is named */
  Token **schedule_names;
  Loc schedule_loc;
  Sym *syms;               /* the names in scope, innermost first */
  Sym *scope;              /* where the innermost scope ends: the top-level
                              names a body sees (NULL at top level) */
  NameMap *names;          /* name -> its newest Sym (parse_lookup) */
  int scope_id;            /* 0 at top level, else the body's call */
  int nscopes;             /* calls of bodies so far (scope ids) */
  int visible_seq;         /* top-level names up to this seq are in scope */
  int nsyms;               /* top-level names so far */
  NameMap *def_names, *instance_names, *output_names, *metric_names;
  struct Call *free_calls; /* finished calls' records, for reuse (call.c) */
  int depth;
  int ndense;              /* Keras-style numbering of unnamed layers */
  int nconv, ndropout, nbn;
  int nrandom;             /* random_normal & co. without seed= */
  int nconv_transpose;
  int nembedding;
  int nrnn[3];             /* simple_rnn, lstm, gru */
  const char *bind_name;   /* the name a let-binding is about to get */
  Token *stmt;             /* the first token of the statement being parsed */
  jmp_buf fail;            /* the first error unwinds the whole parse */
  /* Functions (func.c): the defs so far, the instance whose body is being
   * applied (NULL at top level: it prefixes the body's parameters), the
   * parameters every instance has made (by full name, so that a later call
   * of the same instance shares them) and the bodies being applied. */
  Def *defs;
  const char *instance;
  Sym *instance_params;
  const Def *active[16];
  int nactive;
  Padded *padded;          /* results of data-dependent sizes (tensor.c) */
} Parser;


/* A call argument before the callee decides what it must be. */
typedef enum { V_NODE, V_NUM, V_LIST, V_NAME } ValKind;

typedef struct Item {      /* an element of a bracketed list */
  double v;
  bool is_int;
  const char *name;
  Loc loc;
} Item;

typedef struct Val {
  ValKind kind;
  const char *key;         /* keyword argument name, or NULL */
  Loc keyloc;
  Loc loc;
  Node *node;
  double num;
  bool is_int;
  const char *name;
  Item *items;             /* V_LIST, flattened row-major */
  Shape lshape;            /* V_LIST nesting */
  double reg[2];           /* a *regularizer= (V_NAME "regularizer"): l1, l2 */
  bool used;
} Val;

enum { MAX_ARGS = MAX_OPERANDS + 8, MAX_LITERAL = 1 << 20 };

typedef struct Call {
  Token *fn;
  Val args[MAX_ARGS];
  int nargs, npos;
  /* a builtin with several results (tensor.c: unstack, top_k) sets them
   * here; its return value is the first */
  struct Node **results;
  int nresults;
  struct Call *next_free;  /* reuse (call.c: call_begin) */
} Call;


_Noreturn void parse_fail(Parser *p, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
_Noreturn void parse_expected(Parser *p, const char *what);
_Noreturn void parse_unknown(Parser *p, const char *name, Loc loc);
/* Node constructors that unwind the parse when a shape rule refuses. */
Node *parse_mk(Parser *p, OpKind op, Node **src, int nsrc, const Attrs *a, Loc loc);
/* call.c's argument records and keyword lists, for fit.c's calls */
Call *call_begin(Parser *p, Token *fn);
void call_end(Parser *p, Call *c);
bool call_in_list(const char *list, const char *key);
/* arg = IDENT "=" value | value, appended to c */
void call_parse_arg(Parser *p, Call *c);
/* Learning-rate schedules (fit.c): the schedule t names when a "(" follows
 * (else SCHED_NONE), and the call at p->tok parsed. */
ScheduleKind parse_schedule_named(Parser *p, Token *t);
LrSchedule parse_schedule(Parser *p, ScheduleKind kind);
/* Regularizers (fit.c): l1(x) | l2(x) | l1_l2(l1=, l2=) into the two
 * factors; param's penalty recorded on the graph; after the last
 * statement, each train step's loss gets its parameters' penalties. */
void parse_regularizer(Parser *p, double reg[2]);
void call_regularize(Parser *p, Node *param, const double reg[2], Loc loc);
void call_regularizer_arg(Parser *p, Call *c, const char *key, Node *param);
void regularize_steps(Parser *p);
/* Warns where a cross-entropy's operands look swapped (fit.c). */
void warn_swapped_losses(Parser *p);
Node *parse_mk1(Parser *p, OpKind op, Node *x, const Attrs *a, Loc loc);
Node *parse_mk2(Parser *p, OpKind op, Node *x, Node *y, Loc loc);
char *parse_str(Parser *p, const Token *t);
bool parse_at(Parser *p, const char *s);
bool parse_accept(Parser *p, const char *s);
void parse_skip(Parser *p, const char *s);
Token *parse_ident(Parser *p, const char *what);
Sym *parse_lookup(Parser *p, const char *name);
void parse_define(Parser *p, const char *name, Node *n, Loc loc);
/* A new trainable parameter declared as `name` (a param statement, a
 * layer's kernel): at top level the node named name; inside a function
 * body the instance's parameter INSTANCE.name, made by the instance's first
 * call and returned again (same node) by its later calls, which must ask
 * for the same dtype and shape.  Bound to name in the current scope either
 * way; the caller sets the initializer. */
Node *parse_param(Parser *p, const char *name, DType t, const Shape *s, Loc loc);
Node *parse_shared_leaf(Parser *p, OpKind op, const char *name, DType t, const Shape *s, Loc loc);
void parse_update_ema(Parser *p, Node *state, double keep, Node *add, Loc loc);
/* One statement and its end of line (parse.c's grammar). */
void parse_statement(Parser *p);
Node *parse_scalar(Parser *p, double v, bool is_int, Loc loc);
/* state <- value after each train step (update statements, batch_norm) */
void parse_update(Parser *p, Node *state, Node *value, Loc loc);
bool parse_number(Parser *p, double *v, bool *is_int, Loc *loc);
/* steps.c: train, schedule and constraint statements (after their
 * keyword), and what settles them once the whole file is read */
void parse_train_stmt(Parser *p, Token *kw);
void parse_schedule_stmt(Parser *p, Token *kw);
void parse_constraint_stmt(Parser *p);
/* clip(lo, hi) or non_neg at p->tok, for a constraint statement or param's constraint= */
void parse_constraint(Parser *p, double *lo, double *hi);
void parse_add_constraint(Parser *p, Node *param, double lo, double hi, Loc loc);
void parse_finish_steps(Parser *p);
void parse_finish_schedule(Parser *p);
/* dimexpr.c: integer arithmetic of literals and integer constants as a
 * list item or a dimension (7*7*64); false, consuming nothing, when the
 * item at p->tok is a lone number or symbolic name. */
bool parse_dim_expr(Parser *p, double *v, Loc *loc);
void parse_list_value(Parser *p, Val *v);
Node *parse_list_tensor(Parser *p, Val *v);
Node *parse_expr(Parser *p);
/* index.c: the subscript x[...] at p->tok (integers, slices, ..., newaxis) */
Node *parse_index(Parser *p, Node *x);
/* call.c */
Node *parse_call(Parser *p);
bool call_is_builtin(const char *name);
DType parse_dtype(const char *s, bool *ok);
/* initializers.c: `= INIT` after a param's type */
void parse_init(Parser *p, Node *param);
/* steps.c: a train statement's optimizer and its hyperparameters */
Optimizer parse_optimizer(Parser *p, Token *ot);
/* Argument accessors for call handlers: each marks what it reads as used
 * and unwinds the parse with a precise error when the argument is not what
 * the callee needs. */
Val *call_arg(Call *c, int i, const char *key);   /* positional i, else key= */
Val *call_kwarg(Call *c, const char *key);
const char *call_name(Parser *p, Call *c);
Node *call_tensor(Parser *p, Call *c, int i, const char *key);
double call_num(Parser *p, Call *c, Val *v, bool want_int);
bool call_bool(Parser *p, Call *c, Val *v);
int call_axis(Parser *p, Call *c, Val *v, int rank, int dflt);
int64_t call_count(Parser *p, Call *c, int i, const char *key, const char *what);
Node *call_reshape(Parser *p, Node *x, const Shape *to, Loc loc);
/* A shape written as a list: [batch, 28, 28, 1] (one -1 to infer). */
Shape call_shape(Parser *p, Call *c, Val *v);
/* the closest of names to s, if close enough to be a likely typo */
const char *call_nearest(const char *s, const char *const *names, int n);
Node *call_init(Parser *p, Node *param, Val *v);   /* initializers.c: param's initializer from v */

/* func.c: functions of the model language (see the essay there).
 *   def NAME(ARG, ...) { STATEMENT... return EXPR (, EXPR)* }
 * A Def is the body's tokens, its arguments and its number of results;
 * each call parses the body again on its own arguments. */
enum { MAX_RESULTS = 16 };
/* results of one builtin call (unstack of an RNN's 80 steps, split into
 * many parts): they live in the parse's arena, not in arrays of
 * MAX_RESULTS on the stack, so the bound only keeps graphs sane */
enum { MAX_CALL_RESULTS = 4096 };
void func_def(Parser *p, Token *kw);                /* after `def` */
const Def *parse_find_def(Parser *p, const char *name);
/* Fails when name is a def's (parse_define: a tensor cannot take it). */
void func_check_name(Parser *p, const char *name, Loc loc);
int def_nargs(const Def *f);
int def_nresults(const Def *f);
const char *def_name(const Def *f);
/* Applies f to args (nargs of them) as instance `instance` (NULL: f's own
 * name; inside another function's body it is prefixed by that instance,
 * outer.inner), for the call at `call`: the body's nodes are made with
 * graph_node in the current graph, in order, so a caller can tag the nodes
 * appended meanwhile (ids from g->nnodes before to after).  Writes the
 * results into results (room for MAX_RESULTS) and returns their number;
 * on a mistake it reports the error at the body's token with a note "in
 * the call of 'f' at FILE:LINE:COL" and unwinds the parse (p->fail), as
 * every parse function does, so -1 is never returned to a caller that
 * lets the unwinding happen. */
int fn_apply(Parser *p, const Def *f, Node **args, int nargs, const char *instance,
             Loc call, Node **results);
/* NAME "(" args ["," name=INSTANCE] ")" where NAME is a def: parses and
 * applies it, returns the number of results written into results. */
int func_call(Parser *p, const Def *f, Node **results);
/* scan(f, xs..., init=..., axis=1, reverse=false, name=I): a loop over the
 * sequences' axis with f as its body; returns the number of results (the
 * stacked outputs, then the carries' last values). */
int func_scan(Parser *p, Node **results);
/* The results of the loop ending in e (every one, used or not, so that a
 * model written back as nn reads back to the same graph): the stacked
 * values along axis, then the carries' last values; ends the loop's body
 * (cur_loop) and sorts the graph.  Returns their number. */
int scan_results(Parser *p, Node *e, int axis, Node **results);
/* names "=" values: a, b = f(...) (parse.c calls it when a statement starts
 * with NAME ","). */
void func_assign(Parser *p);
/* The warning for functions never called (their bodies are checked only
 * by calls). */
void func_finish(Parser *p);

/* layers.c: handlers of the builtin table that expand Keras layers */
typedef Node *CallFn(Parser *p, Call *c, OpKind op);
CallFn layer_dense, layer_conv2d, layer_im2col, layer_pool, layer_global_avgpool,
    layer_upsample, layer_pad, layer_dropout_mask, layer_dropout, layer_batch_norm;
CallFn layer_conv2d_transpose, layer_col2im;
CallFn layer_embedding;
/* What layers share: a parameter under its name, the layer's name
 * (name=, the binding's, or KIND_N), the activation argument v applied to
 * x (NULL: linear), the dtype of the parameters for input x. */
Node *layer_param(Parser *p, const char *name, DType t, const Shape *s, Init init, Loc loc);
const char *layer_name(Parser *p, Call *c, const char *kind, int *counter);
Node *layer_activate(Parser *p, Call *c, Val *v, Node *x);
DType layer_dtype(const Node *x);
/* recurrent.c: Keras' recurrent layers as loops */
CallFn layer_simple_rnn, layer_lstm, layer_gru;
/* tensor.c: the seeds' tensor toolkit (issue 24), as take/take_add/argsort */
CallFn tensor_gather, tensor_gather_nd, tensor_scatter_nd, tensor_take, tensor_take_add, tensor_tile,
    tensor_repeat, tensor_stack, tensor_unstack, tensor_split, tensor_reverse, tensor_range, tensor_linspace,
    tensor_meshgrid, tensor_fill, tensor_like, tensor_argsort, tensor_sort, tensor_top_k, tensor_cumsum,
    tensor_top_k_accuracy, tensor_boolean_mask, tensor_unique, tensor_where_true, tensor_valid_shape;
/* the padding record of y, or NULL when y is not padded */
const Padded *tensor_padded(const Parser *p, const Node *y);
/* n, just made: padded as its operand when it is elementwise (parse_mk) */
void tensor_follow_padding(Parser *p, Node *n);
/* augment.c: random_flip, random_translation, random_crop (issue 22), as
 * slices, concats and wheres under train_select */
CallFn augment_flip, augment_translation, augment_crop;
/* call.c: a call of a builtin with several results (unstack, top_k) at
 * p->tok; their number, *r pointed at them (in the parse's arena) */
int parse_call_results(Parser *p, Node ***r);

/* ----------------------------------------------------------------- dump.c */

typedef enum { DUMP_TEXT, DUMP_DOT, DUMP_NN } DumpFormat;

void dump_graph(FILE *out, const Graph *g, DumpFormat f, const char *stage);
void dump_summary(FILE *out, const Graph *g);
int64_t graph_param_count(const Graph *g);
/* The workspace plan at one batch size; false when it cannot be computed. */
bool dump_memory(FILE *out, const Graph *g, int64_t batch);

/* -------------------------------------------------------------- compile.c */

/* Stages in pipeline order; a compilation runs up to and including one. */
typedef enum { STAGE_PARSE, STAGE_GRAD, STAGE_OPT, STAGE_COUNT } Stage;
extern const char *const stage_names[STAGE_COUNT];

typedef enum { COMPILE_OK, COMPILE_ERR_MODEL, COMPILE_ERR_IO, COMPILE_ERR_NOMEM } CompileStatus;

/* One compilation: its arena owns the source copy, graph and diagnostics. */
typedef struct Compilation {
  Arena *arena;
  Source src;
  Diags diags;
  Graph *graph;          /* NULL when an error was reported */
  CompileStatus status;  /* why graph is NULL: the model, reading it, memory */
} Compilation;

/* The graph optimizer's passes, in pipeline order. */
typedef enum { PASS_FOLD, PASS_SIMPLIFY, PASS_CSE, PASS_DCE, PASS_FUSE, PASS_COUNT } Pass;
extern const char *const pass_names[PASS_COUNT];

typedef struct PassStat {
  const char *name;
  int before, after;       /* node counts */
  int changed;             /* nodes folded, rewritten, merged, removed, fused */
  double ms;
} PassStat;

typedef struct PassStats {
  PassStat pass[PASS_COUNT];
  int n;
} PassStats;

/* What a caller of compile() chooses; everything else is the pipeline's. */
struct OnnxImportOptions;   /* onnx.h */

typedef struct CompileOptions {
  Stage last;              /* run the stages up to and including this one */
  int opt_level;           /* 0: no pass, every value stored (-O0, --check-numerics) */
  const char *stop_after;  /* a pass name: stop after it (dump --after), or NULL */
  double lr;               /* > 0: overrides the model's learning rate */
  bool verify;             /* graph_verify after every stage and pass */
  PassStats *stats;        /* when not NULL: what each pass changed */
  TimeReport *times;       /* when not NULL: time per stage and pass */
  bool data_parallel;      /* train steps all-reduce their gradients (optimizer.c) */
  /* An .onnx file's loss, label and optimizer to add (gradc train
   * MODEL.onnx --loss ...; onnx.h), or NULL: the import's model text. */
  const struct OnnxImportOptions *onnx;
} CompileOptions;

/* STAGE_OPT at level 3; verify on in GRADC_VERIFY builds or when the
 * environment has GRADC_VERIFY=1. */
CompileOptions compile_defaults(void);

/* The pipeline's one entry point (o NULL = the defaults).  Never returns
 * NULL except when even the arena cannot be made; out of memory inside the
 * pipeline becomes an ordinary error diagnostic. */
Compilation *compile(const char *name, const char *text, size_t len, const CompileOptions *o);
/* Reads the file, or reports why it cannot (COMPILE_ERR_IO, a diagnostic
 * without position), then compile(). */
Compilation *compile_path(const char *path, const CompileOptions *o);
/* Shorthands: compile() with the defaults up to `last`. */
Compilation *compile_model(const char *name, const char *text, size_t len, Stage last);
Compilation *compile_model_file(const char *path, Stage last);
Compilation *compile_source(const char *name, const char *text, size_t len);   /* STAGE_PARSE */
Compilation *compile_file(const char *path);                                   /* STAGE_PARSE */
void compilation_free(Compilation *c);       /* NULL is fine */

/* The passes alone, on a graph that has been through autodiff: compile()'s
 * optimizer, for the tests of single passes. */
void optimize(Graph *g, int level, const char *stop_after, PassStats *st);
/* Test hook: the Nth arena allocation of each later compilation fails. */
void compile_fail_after(long n);

/* --------------------------------------------------------------- verify.c */

/* The graph's invariants (see verify.c); storage: also fuse()'s decisions.
 * False with the first violation written into err. */
bool graph_verify(const Graph *g, bool storage, char *err, size_t errlen);

/* ------------------------------------------------------------- jitmodel.c */

/* The pipeline's options for the API's: what gradc_compile_file compiles,
 * and gradc compile too, so the JIT and the .so get the same graph. */
CompileOptions jitmodel_compile_options(const gradc_options *o);
/* gradc_compile_file, with profile: every kernel and product of the steps
 * timed into the model's RtProfile (gradc train --profile), and with onnx
 * (NULL: none) the loss and optimizer an .onnx file's import adds. */
gradc_status jitmodel_compile_file(const char *path, const gradc_options *opt, bool profile,
                                   const struct OnnxImportOptions *onnx, gradc_model **out);
/* The graph behind a model of gradc_compile_* (the CLI's and the tests'). */
const Graph *jitmodel_graph(const gradc_model *m);
/* Where its compilation's time went (--time-report), and whether its code
 * came from the object cache. */
const TimeReport *jitmodel_times(const gradc_model *m);
bool jitmodel_from_cache(const gradc_model *m);

#endif
