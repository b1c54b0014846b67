/*
 * test_errors.c - every user-facing error: exact line, column, underline
 * length and message.
 *
 * Each row of the table below is a model that must fail with exactly one
 * error (the first error stops the parse, so a second one would be a cascade)
 * at the given place, whose message contains the given phrase.  A few cases
 * also check the whole three-line rendering of diag_format:
 *
 *   t.nn:2:5: error: unknown identifier 'xx'; did you mean 'x'?
 *       2 | y = xx + 1
 *         |     ^~
 *
 * Rows marked "bug:" describe the behaviour the compiler should have and did
 * not have when the row was written; they fail until the compiler is fixed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "compiler.h"

typedef struct ErrCase {
  const char *name;
  const char *src;
  size_t len;              /* 0: strlen(src); set for sources with NULs */
  int line, col, ulen;     /* where the caret goes and how long it is */
  const char *phrase;      /* must occur in the message */
  const char *absent;      /* must not occur in the message, or NULL */
} ErrCase;

#define X4 "input x : f32[4]\n"
#define X43 "input x : f32[4,3]\n"
#define W "param w : f32\n"

static const ErrCase cases[] = {
    /* ---- names */
    {"unknown_ident_suggests", X4 "y = xx + 1\noutput y", 0, 2, 5, 2,
     "unknown identifier 'xx'; did you mean 'x'?", NULL},
    {"unknown_ident_no_close_name", X4 "y = qqqqqq + 1", 0, 2, 5, 6,
     "unknown identifier 'qqqqqq'", "did you mean"},
    {"unknown_function_suggests", X4 "y = rleu(x)", 0, 2, 5, 4,
     "unknown function 'rleu'; did you mean 'relu'?", NULL},
    {"unknown_function_no_close_name", X4 "y = zzzzzzzzzz(x)", 0, 2, 5, 10,
     "unknown function 'zzzzzzzzzz'", "did you mean"},
    {"tensor_called_as_function", X4 "y = x(1)", 0, 2, 5, 1,
     "'x' is a tensor, not a function", NULL},
    {"redefinition_names_first_line", X4 "b = x\na = b + 1\nb = a", 0, 4, 1, 1,
     "redefinition of 'b' (first defined at line 2)", NULL},
    {"keyword_as_let_name", X4 "with = x", 0, 2, 1, 4,
     "'with' is a keyword and cannot be a name", NULL},
    /* bug: "input = x" says "expected a name, found '='" at 2:7 */
    {"statement_keyword_as_let_name", X4 "input = x", 0, 2, 1, 5,
     "'input' is a keyword and cannot be a name", NULL},
    /* bug: a declaration may take a keyword as its name ("input train : f32"
     * compiles, and such a loss can never be named in train) */
    {"keyword_as_declared_name", "input train : f32", 0, 1, 7, 5,
     "'train' is a keyword and cannot be a name", NULL},
    {"unknown_statement_suggests", "inptu x : f32", 0, 1, 1, 5,
     "unknown statement 'inptu'; did you mean 'input'?", NULL},
    {"unknown_statement_no_close_name", "input x : f32\ny = x\nfoo", 0, 3, 1, 3,
     "expected a statement", NULL},

    /* ---- calls */
    {"wrong_arity", X4 "y = relu(x, x)", 0, 2, 5, 4,
     "relu takes 1 argument, got 2", NULL},
    {"missing_argument", X4 "y = add(x)", 0, 2, 5, 3,
     "add takes 2 arguments, got 1", NULL},
    {"unknown_keyword_caret_on_keyword", X43 "y = softmax(x, axs=1)", 0, 2, 16, 3,
     "softmax has no argument 'axs'", NULL},
    {"keyword_value_not_integer", X43 "y = softmax(x, axis=1.5)", 0, 2, 21, 3,
     "softmax: expected an integer, got 1.5", NULL},
    {"keyword_value_not_number", X43 "y = softmax(x, axis=x)", 0, 2, 21, 1,
     "softmax: expected a number", NULL},
    {"keyword_value_not_bool", X43 "y = sum(x, keepdims=3)", 0, 2, 21, 1,
     "sum: expected true or false", NULL},
    {"cast_to_unknown_dtype", X43 "y = cast(x, f16)", 0, 2, 13, 3,
     "cast: expected a dtype", NULL},
    {"positional_after_keyword", X43 "y = sum(axis=1, x)", 0, 2, 17, 1,
     "positional argument after keyword arguments", NULL},
    {"too_many_concat_operands",
     X4 "y = concat(x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,"
        "x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x, axis=0)",
     0, 2, 5, 6, "at most 64", NULL},

    /* ---- shapes and dtypes */
    {"broadcast_mismatch_shows_both_shapes",
     "input a : f32[4,32,32,3]\ninput b : f32[1,4,1,1]\ny = a + b", 0, 3, 7, 1,
     "shape mismatch: [4,32,32,3] + [1,4,1,1] cannot be broadcast", NULL},
    {"broadcast_mismatch_names_axis",
     "input a : f32[4,32,32,3]\ninput b : f32[1,4,1,1]\ny = a + b", 0, 3, 7, 1,
     "axis 1: 32 vs 4", NULL},
    {"matmul_inner_mismatch", "input a : f32[4,3]\ninput b : f32[5,2]\ny = a @ b", 0,
     3, 7, 1, "matmul inner dimensions differ: [4,3] @ [5,2] (3 vs 5)", NULL},
    {"matmul_of_vectors", "input a : f32[4]\ny = a @ a", 0, 2, 7, 1,
     "matmul needs operands of rank >= 2", NULL},
    {"dtype_mismatch_suggests_cast", "input a : f32[4]\ninput b : i32[4]\ny = a + b",
     0, 3, 7, 1, "dtype mismatch in +: f32 and i32; convert one with cast(", NULL},
    {"float_literal_with_int_tensor", "input a : i32[4]\ny = a + 1.5", 0, 2, 9, 3,
     "literal 1.5 is not an integer but the other operand of + is i32", NULL},
    {"bool_arithmetic", "input x : bool[3]\ny = x + x", 0, 2, 7, 1,
     "+ needs a numeric operand, got bool", NULL},
    {"axis_out_of_range", X43 "y = softmax(x, axis=2)", 0, 2, 21, 1,
     "softmax: axis 2 is out of range for a tensor of rank 2", NULL},
    {"negative_axis_out_of_range", X43 "y = sum(x, axis=-3)", 0, 2, 17, 2,
     "sum: axis -3 is out of range for a tensor of rank 2", NULL},
    {"repeated_axis", "input x : f32[3]\ny = sum(x, axis=[0, 0])", 0, 2, 21, 1,
     "sum: axis 0 is repeated", NULL},
    {"reshape_count_mismatch", X43 "y = reshape(x, [5, 2])", 0, 2, 5, 7,
     "cannot reshape [4,3] to [5,2]: the element counts differ", NULL},
    {"squeeze_of_non_1_axis", X43 "y = squeeze(x, axis=1)", 0, 2, 21, 1,
     "squeeze: axis 1 has size 3, not 1", NULL},
    {"index_out_of_range", X43 "y = x[4]", 0, 2, 7, 1,
     "index 4 is out of range for axis 0 of size 4", NULL},
    {"negative_index_out_of_range", X43 "y = x[-5]", 0, 2, 7, 2,
     "index -5 is out of range for axis 0 of size 4", NULL},
    {"too_many_indices", "input x : f32[2]\ny = x[0, 0]", 0, 2, 10, 1,
     "too many indices for a tensor of rank 1", NULL},
    {"slice_step_zero", "input x : f32[2]\ny = x[::0]", 0, 2, 7, 1,
     "slice step cannot be zero", NULL},
    /* issue 24: '...' and newaxis */
    {"two_ellipses", X43 "y = x[..., 0, ...]", 0, 2, 15, 3,
     "an index can have only one ellipsis ('...'); the first is at column 7", NULL},
    {"too_many_indices_with_ellipsis", X43 "y = x[0, ..., 1, 2]", 0, 2, 18, 1,
     "too many indices for a tensor of rank 2", NULL},
    {"newaxis_counts_no_axis", X43 "y = x[newaxis, 0, newaxis, 1, 2]", 0, 2, 31, 1,
     "too many indices for a tensor of rank 2", NULL},
    {"empty_index", X43 "y = x[]", 0, 2, 7, 1,
     "expected an index, a slice, '...' or 'newaxis', found ']'", NULL},
    {"ellipsis_index_out_of_range", X43 "y = x[..., 3]", 0, 2, 12, 1,
     "index 3 is out of range for axis 1 of size 3", NULL},
    {"meshgrid_indexing", X4 "y = meshgrid(x, indexing=foo)", 0, 2, 26, 3,
     "meshgrid: indexing is xy or ij, got 'foo'", NULL},
    {"meshgrid_of_a_matrix", X4 "y = meshgrid(x, [[1., 2.]])", 0, 2, 17, 1,
     "meshgrid needs vectors; argument 2 has rank 2", NULL},
    {"exclusive_cumprod_along_batch", "input x : f32[batch,3]\ny = cumprod(x, exclusive=true)", 0, 2,
     5, 7, "cumprod: axis 0 is the symbolic dimension 'batch'", NULL},
    {"empty_slice", X43 "y = x[:, 1:1]", 0, 2, 6, 1,
     "the slice of axis 1 (length 3) is empty", NULL},
    {"concat_along_batch", "input x : f32[batch,3]\ny = concat(x, x, axis=0)", 0, 2, 5, 6,
     "cannot concat along the symbolic dimension 'batch' (axis 0)", NULL},
    {"concat_one_operand_along_batch", "input x : f32[batch,3]\ny = concat(x, axis=0)", 0, 2,
     5, 6, "cannot concat along the symbolic dimension 'batch' (axis 0)", NULL},
    {"slicing_symbolic_dim", "input x : f32[batch,3]\ny = x[0:2]", 0, 2, 7, 1,
     "symbolic dimension 'batch'", NULL},
    {"one_hot_of_f32", X4 "y = one_hot(x, 10)", 0, 2, 5, 7,
     "one_hot needs i32 class indices, got f32", NULL},
    {"where_non_bool_condition", X4 "y = where(x, x, x)", 0, 2, 5, 5,
     "where needs a bool condition, got f32", NULL},
    {"clip_bounds_reversed", "input x : f32[3]\ny = clip(x, 2, 1)", 0, 2, 5, 4,
     "clip bounds are reversed: min 2 > max 1", NULL},
    {"unknown_activation", X43 "y = dense(x, 4, activation=relux)", 0, 2, 28, 5,
     "dense: unknown activation", NULL},
    {"conv2d_kernel_channels", "input x : f32[2,6,6,3]\nparam w : f32[3,3,1,4]\n"
     "y = conv2d(x, w)", 0, 3, 15, 1, "conv2d: the kernel expects 1 input channels but the "
     "input has 3", NULL},
    {"conv2d_strides_zero", "input x : f32[2,6,6,3]\ny = conv2d(x, 4, 3, strides=0)", 0, 2,
     29, 1, "conv2d: strides must be positive, got 0", NULL},
    {"update_of_param", "param w : f32[2]\ninput x : f32[2]\nupdate w = x", 0, 3, 8, 1,
     "update needs a state declared with 'state', not a param", NULL},
    {"update_type_mismatch", "state s : f32[2]\ninput x : f32[3]\nupdate s = x", 0, 3, 8, 1,
     "update of 's' (f32[2]) with a value of type f32[3]", NULL},
    {"update_twice", "state s : f32[2]\nupdate s = s + 1\nupdate s = s * 2", 0, 3, 8, 1,
     "'s' already has an update", NULL},
    {"pool_window_too_large", "input x : f32[2,6,6,3]\ny = maxpool2d(x, 7)", 0, 2, 5, 9,
     "maxpool2d: the 7x7 window (dilation 1, 1) does not fit the 6x6 input", NULL},
    {"pool_bad_padding", "input x : f32[2,6,6,3]\ny = avgpool2d(x, padding=full)", 0, 2, 26, 4,
     "avgpool2d: padding must be valid, same or [top, bottom, left, right]", NULL},

    /* ---- declarations and types */
    {"unknown_dtype", "input x : f16[4]", 0, 1, 11, 3,
     "unknown dtype 'f16'; use f32, f64, i32 or bool", NULL},
    {"zero_dimension", "input x : f32[0]", 0, 1, 15, 1,
     "dimension 0 must be a positive integer", NULL},
    /* bug: says "expected a dimension ..., found '-'" */
    {"negative_dimension", "input x : f32[4, -3]", 0, 1, 18, 2,
     "dimension -3 must be a positive integer", NULL},
    /* bug: says "dimension 1099511627777 must be a positive integer" */
    {"dimension_past_limit", "input x : f32[1099511627777]", 0, 1, 15, 13,
     "2^40", "positive integer"},
    {"symbolic_dim_in_param", "param w : f32[batch, 4]", 0, 1, 7, 1,
     "parameter shapes must be static, but 'batch' is symbolic", NULL},
    {"int_param", "param w : i32[4]", 0, 1, 7, 1,
     "parameters must be floating-point, got i32", NULL},
    {"rank_above_8", "input x : f32[1,1,1,1,1,1,1,1,1]", 0, 1, 31, 1,
     "rank exceeds the limit of 8", NULL},
    {"too_many_symbolic_dims",
     "input x : f32[s0,s1,s2,s3,s4,s5,s6,s7]\ninput z : f32[t0,t1,t2,t3,t4,t5,t6,t7]\n"
     "input w : f32[u1]",
     0, 3, 15, 2, "too many symbolic dimensions (at most 16)", NULL},
    {"const_not_integer", "const c : i32 = 1.5", 0, 1, 17, 3,
     "value 1.5 is not an integer but the constant is i32", NULL},

    /* ---- initializers */
    {"unknown_initializer", "param w : f32[4] = foo", 0, 1, 20, 3,
     "unknown initializer 'foo'", NULL},
    {"unknown_initializer_call", "param w : f32[4] = foo(1)", 0, 1, 20, 3,
     "unknown initializer 'foo'", NULL},
    {"uniform_min_not_below_max", "param w : f32[4] = uniform(1, 1)", 0, 1, 20, 7,
     "uniform needs minval < maxval, got (1, 1)", NULL},
    {"uniform_min_above_max_by_keyword",
     "param w : f32[4] = uniform(minval=2, maxval=1)", 0, 1, 20, 7,
     "uniform needs minval < maxval, got (2, 1)", NULL},
    {"normal_negative_std", "param w : f32[4] = normal(0, -1)", 0, 1, 20, 6,
     "normal needs a positive standard deviation", NULL},
    {"constant_without_value", "param w : f32[4] = constant", 0, 1, 20, 8,
     "constant needs a value", NULL},
    {"initial_values_wrong_count", "param w : f32[2,2] = [1, 2, 3]", 0, 1, 22, 1,
     "initial values have shape [3] but 'w' is [2,2]", NULL},
    {"initial_values_wrong_shape", "param w : f32[2,2] = [[1, 2, 3], [4, 5, 6]]", 0,
     1, 22, 1, "initial values have shape [2,3] but 'w' is [2,2]", NULL},

    /* ---- train */
    {"train_without_loss_name", W "train with sgd", 0, 2, 7, 4,
     "train needs the name of a loss", NULL},
    {"train_non_scalar_loss", "param w : f32[3]\ntrain w with sgd", 0, 2, 7, 1,
     "the loss 'w' must be a scalar, but it has shape [3]", NULL},
    {"train_int_loss", "input x : i32\ntrain x with sgd", 0, 2, 7, 1,
     "the loss 'x' must be floating-point, got i32", NULL},
    {"schedule_unknown_step", W "loss = w * w\ntrain loss with sgd as a\nschedule a, b", 0, 4, 13, 1,
     "the schedule names 'b', which is not a train step (the steps are: a)", NULL},
    {"schedule_zero_times", W "loss = w * w\ntrain loss with sgd as a\nschedule a * 0", 0, 4, 14, 1,
     "a schedule repeats a step a whole number of times from 1 to 1000000, got '0'", NULL},
    {"schedule_fraction", W "loss = w * w\ntrain loss with sgd as a\nschedule a * 1.5", 0, 4, 14, 3,
     "whole number of times", NULL},
    {"schedule_twice", W "loss = w * w\ntrain loss with sgd as a\nschedule a\nschedule a", 0, 5, 1, 8,
     "the model already has a schedule", NULL},
    {"schedule_without_steps", W "loss = w * w\nschedule a", 0, 3, 1, 8,
     "a schedule needs train statements", NULL},
    {"constraint_matches_nothing", W "constraint v* = non_neg", 0, 2, 12, 2,
     "'v*' matches no parameter declared so far; a constraint comes after the layers it constrains", NULL},
    {"constraint_unknown", W "constraint w = max_norm(2)", 0, 2, 16, 8,
     "unknown constraint 'max_norm' (the constraints are clip(min, max) and non_neg)", NULL},
    {"constraint_min_above_max", W "constraint w = clip(1, -1)", 0, 2, 16, 4,
     "clip needs min <= max, got (1, -1)", NULL},
    {"constraint_twice", W "constraint w = non_neg\nconstraint w = clip(0, 1)", 0, 3, 16, 4,
     "parameter 'w' already has a constraint (line 2)", NULL},
    {"constraint_on_param_not_number", "param w : f32 = zeros constraint=clip(0, x)", 0, 1, 42, 1,
     "clip needs two numbers: clip(min, max)", NULL},
    {"train_undefined_name", W "train loss with sgd", 0, 2, 7, 4,
     "unknown identifier 'loss'", NULL},
    {"two_train_statements", W "train w with sgd\ntrain w with adam", 0, 3, 1, 5,
     "two train steps would be named 'w'; name this one with 'as <name>'", NULL},
    {"train_step_named_twice", W "train w with sgd as a\ntrain w with adam as a", 0, 3, 22, 1,
     "a train step named 'a' already exists", NULL},
    {"train_step_name_not_c", W "train w with sgd as a.b", 0, 2, 21, 3,
     "a train step's name must be a C identifier", NULL},
    {"train_pattern_matches_nothing", W "train w of v*, w with sgd", 0, 2, 12, 2,
     "'v*' matches no parameter (the parameters are: w)", NULL},
    {"train_pattern_missing", W "train w of with sgd", 0, 2, 12, 4,
     "expected a parameter name or pattern", NULL},
    {"unknown_optimizer_suggests", W "train w with adma", 0, 2, 14, 4,
     "unknown optimizer 'adma'; did you mean 'adam'?", NULL},
    {"unknown_optimizer_lists_all", W "train w with foobar", 0, 2, 14, 6,
     "use sgd, rmsprop, adam or adagrad", "did you mean"},
    {"bad_optimizer_kwarg", W "train w with sgd(lrr=0.1)", 0, 2, 18, 3,
     "sgd has no argument 'lrr'", NULL},
    /* bug: the caret goes to 'sgd' (2:14, length 3), not to the bad value */
    {"negative_learning_rate", W "train w with sgd(lr=-0.1)", 0, 2, 21, 4,
     "learning rate must be positive", NULL},
    {"second_positional_optimizer_arg", W "train w with sgd(0.1, 0.2)", 0, 2, 23, 3,
     "only the learning rate may be positional", NULL},
    {"optimizer_bool_kwarg", W "train w with sgd(nesterov=maybe)", 0, 2, 27, 5,
     "sgd: expected true or false", NULL},

    /* ---- numbers */
    {"number_two_dots", "x = 1.2.3", 0, 1, 5, 5, "bad number '1.2.3'", NULL},
    {"number_empty_exponent", "x = 1e", 0, 1, 5, 2,
     "bad number '1e': exponent has no digits", NULL},
    {"number_signed_empty_exponent", "x = 1e+", 0, 1, 5, 3,
     "exponent has no digits", NULL},
    {"number_with_letters", "x = 12abc", 0, 1, 5, 5, "bad number '12abc'", NULL},
    {"huge_integer", "x = 99999999999999999999", 0, 1, 5, 20,
     "integer '99999999999999999999' is too large", NULL},
    {"float_out_of_range", "x = 1e999", 0, 1, 5, 5, "number '1e999' is out of range",
     NULL},

    /* ---- brackets and characters */
    {"unterminated_paren_on_earlier_line", X4 "y = (x +\n  1\n", 0, 2, 5, 1,
     "unterminated '(': missing ')' before the end of the file", NULL},
    {"unterminated_bracket", "const c = [1, 2,\n 3\n", 0, 1, 11, 1,
     "unterminated '[': missing ']'", NULL},
    {"unterminated_inner_paren", X4 "y = relu((x\n\noutput y", 0, 2, 10, 1,
     "unterminated '('", NULL},
    {"unmatched_close_paren", X4 "y = x)", 0, 2, 6, 1, "unmatched ')'", NULL},
    {"mismatched_close_bracket", X4 "y = (x +\n x]", 0, 3, 3, 1,
     "']' does not match the '(' opened at line 2", NULL},
    {"unexpected_character", X4 "y = x $ 1", 0, 2, 7, 1,
     "unexpected character '$'", NULL},
    {"non_ascii_byte", X4 "y = x \xff 1", 0, 2, 7, 1, "unexpected byte 0xff", NULL},
    {"nul_byte", X4 "y = x \0 1\n", sizeof X4 "y = x \0 1\n" - 1, 2, 7, 1,
     "unexpected byte 0x00", NULL},
    {"control_byte_after_comment", X4 "y = x # \x01 is fine in a comment\n  z = x \x01\n",
     0, 3, 9, 1, "unexpected byte 0x01", NULL},
    {"missing_operand", X4 "y = x +", 0, 2, 8, 1,
     "expected an expression, found end of file", NULL},
    {"missing_operand_before_newline", X4 "y = x +\noutput y", 0, 2, 8, 1,
     "expected an expression, found end of line", NULL},
    {"output_without_name", "output", 0, 1, 7, 1, "expected a name, found end of file",
     NULL},
    /* ---- functions (def); errors inside a body are at the body's token,
     * followed by a note at the call (test_def_error_note) */
#define DEF_ID "def f(a) {\n  return a\n}\n"
    {"def_without_return", X4 "def f(a) {\n  b = a + 1\n}\ny = f(x)", 0, 4, 1, 1,
     "function 'f' has no return statement; end its body with return EXPR", NULL},
    {"def_return_not_last", X4 "def f(a) {\n  return a\n  b = a\n}", 0, 3, 3, 6,
     "return must be the last statement of 'f'", NULL},
    {"def_return_without_value", X4 "def f(a) {\n  return\n}", 0, 3, 3, 6,
     "return needs a value", NULL},
    {"def_input_in_body", X4 "def f(a) {\n  input z : f32\n  return a\n}", 0, 3, 3, 5,
     "'input' is not allowed inside a function", NULL},
    {"def_output_in_body", X4 "def f(a) {\n  output a\n  return a\n}", 0, 3, 3, 6,
     "'output' is not allowed inside a function", NULL},
    {"def_metric_in_body", X4 "def f(a) {\n  metric m = sum(a)\n  return a\n}", 0, 3, 3, 6,
     "'metric' is not allowed inside a function", NULL},
    {"def_train_in_body", X4 "def f(a) {\n  train a with sgd\n  return a\n}", 0, 3, 3, 5,
     "'train' is not allowed inside a function", NULL},
    {"def_state_in_body", X4 "def f(a) {\n  state s : f32[4]\n  return a\n}", 0, 3, 3, 5,
     "'state' is not allowed inside a function: each call would update the state again", NULL},
    {"def_update_in_body", X4 "state s : f32[4]\ndef f(a) {\n  update s = a\n  return a\n}", 0,
     4, 3, 6, "'update' is not allowed inside a function", NULL},
    {"def_nested", X4 "def f(a) {\n  def g(b) {\n    return b\n  }\n  return a\n}", 0, 3, 3, 3,
     "a function cannot be defined inside another", NULL},
    {"def_schedule_in_body", X4 "def f(a) {\n  schedule a\n  return a\n}", 0, 3, 3, 8,
     "'schedule' is not allowed inside a function", NULL},
    {"def_constraint_in_body", X4 "def f(a) {\n  constraint w = non_neg\n  return a\n}", 0, 3, 3, 10,
     "'constraint' is not allowed inside a function", NULL},
    /* commas outside brackets counted two results; one parses, then 'a' */
    {"def_return_juxtaposed", X4 "def f(a) {\n  return relu(a) a, a\n}\ny, z = f(x)", 0, 3, 18, 1,
     "expected the end of the return statement, found 'a'", NULL},
    {"def_call_too_many_args", X4 "def f(a, b) {\n  return a + b\n}\ny = f(x, x, x)", 0, 5, 5, 1,
     "f(a, b) takes 2 arguments, got 3", NULL},
    {"def_call_too_few_args", X4 "def f(a, b) {\n  return a + b\n}\ny = f(x)", 0, 5, 5, 1,
     "f(a, b) takes 2 arguments, got 1", NULL},
    {"def_call_unknown_keyword", X4 DEF_ID "y = f(x, nme=q)", 0, 5, 10, 3,
     "f(a) has no argument 'nme'; a function call takes its arguments and name=INSTANCE", NULL},
    {"def_shadows_builtin", X4 "def tanh(a) {\n  return a\n}", 0, 2, 5, 4,
     "'tanh' is a builtin function; choose another name for the def", NULL},
    {"def_shadows_layer", X4 "def dense(a) {\n  return a\n}", 0, 2, 5, 5,
     "'dense' is a builtin function", NULL},
    {"def_redefined", X4 DEF_ID "def f(b) {\n  return b\n}", 0, 5, 5, 1,
     "redefinition of function 'f' (first defined at line 2)", NULL},
    {"def_named_like_tensor", X4 "def x(a) {\n  return a\n}", 0, 2, 5, 1,
     "'x' is already a tensor (defined at line 1)", NULL},
    {"tensor_named_like_def", X4 DEF_ID "f = x", 0, 5, 1, 1,
     "'f' is a function (defined at line 2)", NULL},
    {"def_duplicate_argument", X4 "def f(a, a) {\n  return a\n}", 0, 2, 10, 1,
     "'a' is already an argument of 'f'", NULL},
    {"def_recursion_direct", X4 "def f(a) {\n  return f(a)\n}\ny = f(x)", 0, 3, 10, 1,
     "recursive call of 'f' (f -> f); a function cannot call itself", NULL},
    {"def_recursion_indirect", X4 "def f(a) {\n  return g(a)\n}\ndef g(a) {\n  return f(a)\n}\n"
     "y = f(x)", 0, 6, 10, 1, "recursive call of 'f' (f -> g -> f)", NULL},
    {"def_unknown_name_in_body", X4 "def f(a) {\n  return a + zz\n}\ny = f(x)", 0, 3, 14, 2,
     "unknown identifier 'zz'", NULL},
    {"def_body_sees_no_later_names", X4 "def f(a) {\n  return a + later\n}\nlater = x\ny = f(x)",
     0, 3, 14, 5, "unknown identifier 'later'", NULL},
    {"def_local_not_visible_outside", X4 "def f(a) {\n  t = a + 1\n  return t\n}\ny = f(x)\n"
     "z = t", 0, 7, 5, 1, "unknown identifier 't'", NULL},
    {"def_shape_error_in_second_call", "input x : f32[2, 4]\ndef f(a) {\n  param W : f32[4, 3]\n"
     "  return a @ W\n}\ny = f(x)\nz = f(y)", 0, 4, 12, 1,
     "matmul inner dimensions differ", NULL},
    {"def_shared_param_other_shape", "input x : f32[2, 4]\ndef f(a) {\n  return dense(a, 3)\n}\n"
     "y = f(x)\nz = f(y)", 0, 3, 10, 5,
     "parameter 'f.dense.kernel' is f32[3,3] here but f32[4,3] as the instance's first call "
     "made it (line 3)", NULL},
    {"def_instance_param_clashes", "input x : f32[2, 4]\nparam f.W : f32[4, 3]\n"
     "def f(a) {\n  param W : f32[4, 3]\n  return a @ W\n}\ny = f(x) + sum(f.W)", 0, 7, 5, 1,
     "redefinition of 'f.W' (first defined at line 2)", NULL},
    {"tuple_count_differs", X4 "def f(a) {\n  return a, a\n}\ny, z, w = f(x)", 0, 5, 11, 1,
     "'f' returns 2 results, but 3 names are assigned", NULL},
    {"tuple_of_expression", X4 "a, b = x", 0, 2, 8, 1,
     "2 names are assigned, but only a call of a function defined with def gives several "
     "results", NULL},
    {"multiple_results_in_expression", X4 "def f(a) {\n  return a, a\n}\ny = f(x) + 1", 0, 5, 5,
     1, "'f' returns 2 results; assign them with a tuple: a, b = f(...)", NULL},
    {"return_outside_function", X4 "return x", 0, 2, 1, 6, "return outside a function", NULL},
    {"def_unterminated", X4 "def f(a) {\n  return a\n", 0, 2, 10, 1,
     "unterminated '{': missing '}' before the end of the file", NULL},
    {"def_name_argument", X4 "def f(name) {\n  return name\n}", 0, 2, 7, 4,
     "'name' cannot be an argument", NULL},
};

/* ------------------------------------------------------------ helpers */

static size_t case_len(const ErrCase *e) { return e->len ? e->len : strlen(e->src); }

static char *format_diag(const Diag *g) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  assert_non_null(f);
  diag_format(f, g);
  assert_int_equal(fclose(f), 0);
  return buf;
}

/* All diagnostics of c, formatted, for failure messages. */
static char *format_all(const Compilation *c) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  assert_non_null(f);
  fprintf(f, "graph=%s errors=%d warnings=%d\n", c->graph ? "yes" : "NULL",
          c->diags.errors, c->diags.warnings);
  for (const Diag *g = c->diags.first; g; g = g->next) {
    fprintf(f, "[%d:%d len %d] ", g->loc.line, g->loc.col, g->loc.len);
    diag_format(f, g);
  }
  assert_int_equal(fclose(f), 0);
  return buf;
}

static Compilation *compile_str(const char *src) {
  Compilation *c = compile_source("t.nn", src, strlen(src));
  assert_non_null(c);
  return c;
}

/* Every byte of formatted diagnostics is printable, a tab or a newline. */
static void assert_printable(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (!(*p == '\n' || *p == '\t' || (*p >= 32 && *p < 127)))
      fail_msg("raw byte 0x%02x at offset %td of:\n%s", *p, (const char *)p - s, s);
}

static void run_case(void **state) {
  const ErrCase *e = *state;
  Compilation *c = compile_source("t.nn", e->src, case_len(e));
  assert_non_null(c);
  char *all = format_all(c);
  const Diag *g = c->diags.first;
  bool ok = c->graph == NULL && c->diags.errors == 1 && c->diags.warnings == 0 && g &&
            g->level == DIAG_ERROR && g->loc.src && g->loc.line == e->line &&
            g->loc.col == e->col && g->loc.len == e->ulen && strstr(g->msg, e->phrase) &&
            !(e->absent && strstr(g->msg, e->absent));
  if (!ok) {
    fprintf(stderr, "case %s: expected one error at %d:%d len %d containing \"%s\"%s%s%s\n"
            "got: %s", e->name, e->line, e->col, e->ulen, e->phrase,
            e->absent ? " and not \"" : "", e->absent ? e->absent : "",
            e->absent ? "\"" : "", all);
    free(all);
    compilation_free(c);
    fail_msg("case %s", e->name);
  }
  /* The rendering must succeed and stay printable whatever the input. */
  char *text = format_diag(g);
  char head[64];
  snprintf(head, sizeof head, "t.nn:%d:%d: error: ", e->line, e->col);
  assert_true(strncmp(text, head, strlen(head)) == 0);
  assert_printable(text);
  free(text);
  free(all);
  compilation_free(c);
}

/* ------------------------------------------------------------ whole renderings */

static void expect_rendering(const char *src, size_t len, const char *want) {
  Compilation *c = compile_source("t.nn", src, len);
  assert_non_null(c);
  assert_non_null(c->diags.first);
  char *text = format_diag(c->diags.first);
  bool same = strcmp(text, want) == 0;
  if (!same) fprintf(stderr, "want:\n%sgot:\n%s", want, text);
  free(text);                  /* before failing: the suite runs under LSan */
  compilation_free(c);
  if (!same) fail_msg("the rendering differs");
}

static void test_render_unknown_identifier(void **state) {
  (void)state;
  const char *src = X4 "y = xx + 1\noutput y";
  expect_rendering(src, strlen(src),
                   "t.nn:2:5: error: unknown identifier 'xx'; did you mean 'x'?\n"
                   "    2 | y = xx + 1\n"
                   "      |     ^~\n");
}

static void test_render_shape_mismatch(void **state) {
  (void)state;
  const char *src = "input a : f32[4,32,32,3]\ninput b : f32[1,4,1,1]\ny = a + b\n";
  expect_rendering(src, strlen(src),
                   "t.nn:3:7: error: shape mismatch: [4,32,32,3] + [1,4,1,1] cannot "
                   "be broadcast (axis 1: 32 vs 4)\n"
                   "    3 | y = a + b\n"
                   "      |       ^\n");
}

/* The excerpt is the line of the opening bracket, not the last line. */
static void test_render_unterminated_on_earlier_line(void **state) {
  (void)state;
  const char *src = X4 "y = relu(x +\n  1\n\n# end\n";
  expect_rendering(src, strlen(src),
                   "t.nn:2:9: error: unterminated '(': missing ')' before the end of "
                   "the file\n"
                   "    2 | y = relu(x +\n"
                   "      |         ^\n");
}

static void test_render_long_underline(void **state) {
  (void)state;
  const char *src = "param w : f32[4] = uniform(1, 1)\n";
  expect_rendering(src, strlen(src),
                   "t.nn:1:20: error: uniform needs minval < maxval, got (1, 1)\n"
                   "    1 | param w : f32[4] = uniform(1, 1)\n"
                   "      |                    ^~~~~~~\n");
}

/* A tab before the token is copied into the caret line so they align. */
static void test_render_tab_alignment(void **state) {
  (void)state;
  const char *src = X4 "\ty = xx + 1\n";
  expect_rendering(src, strlen(src),
                   "t.nn:2:6: error: unknown identifier 'xx'; did you mean 'x'?\n"
                   "    2 | \ty = xx + 1\n"
                   "      | \t    ^~\n");
}

static void test_render_non_ascii_byte(void **state) {
  (void)state;
  const char *src = X4 "y = x \xff 1\n";
  expect_rendering(src, strlen(src),
                   "t.nn:2:7: error: unexpected byte 0xff (model files are ASCII text)\n"
                   "    2 | y = x ? 1\n"
                   "      |       ^\n");
}

static void test_render_nul_byte(void **state) {
  (void)state;
  static const char src[] = X4 "y = x \0 1\n";
  expect_rendering(src, sizeof src - 1,
                   "t.nn:2:7: error: unexpected byte 0x00 (model files are ASCII text)\n"
                   "    2 | y = x ? 1\n"
                   "      |       ^\n");
}

/* bug: with CRLF line ends the excerpt ends in '?' (the '\r'). */
static void test_render_crlf_line_ends(void **state) {
  (void)state;
  const char *src = "input x : f32[4]\r\ny = xx + 1\r\n";
  expect_rendering(src, strlen(src),
                   "t.nn:2:5: error: unknown identifier 'xx'; did you mean 'x'?\n"
                   "    2 | y = xx + 1\n"
                   "      |     ^~\n");
}

/* An error on the last line with no newline after it. */
static void test_render_last_line_without_newline(void **state) {
  (void)state;
  const char *src = X4 "y = x +";
  expect_rendering(src, strlen(src),
                   "t.nn:2:8: error: expected an expression, found end of file\n"
                   "    2 | y = x +\n"
                   "      |        ^\n");
}

/* ------------------------------------------------------------ other checks */

/* The first error stops the parse: later mistakes are not reported.  (The
 * lexer runs over the whole file first, so a lexical error anywhere is
 * reported before a syntax error on an earlier line; this case has none.) */
/* An error inside a function's body is at the body's token, followed by
 * one note per call that led there, innermost first, each at its call. */
static void test_def_error_note(void **state) {
  (void)state;
  Compilation *c = compile_str("input x : f32[2, 4]\n"
                               "def g(a) {\n  param W : f32[4, 3]\n  return a @ W\n}\n"
                               "def f(a) {\n  return g(a)\n}\n"
                               "y = f(x)\nz = f(y)\n");
  char *all = format_all(c);
  static const char want[] =
      "graph=NULL errors=1 warnings=0\n"
      "[4:12 len 1] t.nn:4:12: error: matmul inner dimensions differ: [2,3] @ [4,3] (3 vs 4)\n"
      "    4 |   return a @ W\n"
      "      |            ^\n"
      "[7:10 len 1] t.nn:7:10: note: in the call of 'g' at t.nn:7:10\n"
      "    7 |   return g(a)\n"
      "      |          ^\n"
      "[10:5 len 1] t.nn:10:5: note: in the call of 'f' at t.nn:10:5\n"
      "   10 | z = f(y)\n"
      "      |     ^\n";
  if (strcmp(all, want)) fail_msg("got:\n%s\nwant:\n%s", all, want);
  free(all);
  compilation_free(c);
}

static void test_first_error_stops(void **state) {
  (void)state;
  Compilation *c = compile_str("y = xx\nz = yy\nw = relu(x, x)\nv = 1 +\n");
  assert_null(c->graph);
  assert_int_equal(c->diags.errors, 1);
  assert_non_null(c->diags.first);
  assert_null(c->diags.first->next);
  assert_int_equal(c->diags.first->loc.line, 1);
  assert_non_null(strstr(c->diags.first->msg, "unknown identifier 'xx'"));
  compilation_free(c);
}

/* An unused parameter is a warning: the graph is still built. */
static void test_unused_param_warning(void **state) {
  (void)state;
  Compilation *c = compile_str(X4 "param w : f32[4]\noutput x\n");
  assert_non_null(c->graph);
  assert_int_equal(c->diags.errors, 0);
  assert_int_equal(c->diags.warnings, 1);
  const Diag *g = c->diags.first;
  assert_non_null(g);
  assert_int_equal(g->level, DIAG_WARNING);
  assert_int_equal(g->loc.line, 2);
  assert_int_equal(g->loc.col, 7);
  assert_int_equal(g->loc.len, 1);
  assert_string_equal(g->msg, "parameter 'w' is never used");
  char *text = format_diag(g);
  assert_string_equal(text, "t.nn:2:7: warning: parameter 'w' is never used\n"
                            "    2 | param w : f32[4]\n"
                            "      |       ^\n");
  free(text);
  compilation_free(c);
}

/* Warnings do not stop the parse: each unused parameter gets one, in order. */
static void test_two_warnings_in_order(void **state) {
  (void)state;
  Compilation *c = compile_str("param a : f32\nparam bb : f32\n");
  assert_non_null(c->graph);
  assert_int_equal(c->diags.errors, 0);
  assert_int_equal(c->diags.warnings, 2);
  const Diag *a = c->diags.first, *b = a->next;
  assert_non_null(b);
  assert_null(b->next);
  assert_int_equal(a->loc.line, 1);
  assert_int_equal(b->loc.line, 2);
  assert_int_equal(b->loc.col, 7);
  assert_int_equal(b->loc.len, 2);
  assert_string_equal(b->msg, "parameter 'bb' is never used");
  compilation_free(c);
}

/* A used parameter gets no warning. */
static void test_used_param_no_warning(void **state) {
  (void)state;
  Compilation *c = compile_str(X4 "param w : f32[4]\ny = x * w\noutput y\n");
  assert_non_null(c->graph);
  assert_int_equal(c->diags.errors, 0);
  assert_int_equal(c->diags.warnings, 0);
  assert_null(c->diags.first);
  compilation_free(c);
}

/* bug: a parameter that is itself an output, a metric or the loss gets
 * "parameter 'w' is never used", though it is used (N_USED is only set when
 * another node reads it). */
static void test_param_as_output_or_loss_is_used(void **state) {
  (void)state;
  static const char *const srcs[] = {
      "param w : f32\noutput w\n",
      "param w : f32 = 0\nmetric w\n",
      "param w : f32\ntrain w with sgd\n",
  };
  int wrong = 0;
  for (size_t i = 0; i < sizeof srcs / sizeof *srcs; i++) {
    Compilation *c = compile_str(srcs[i]);
    assert_non_null(c->graph);
    if (c->diags.warnings != 0) {
      fprintf(stderr, "unexpected warning for:\n%s", srcs[i]);
      diag_print(stderr, &c->diags);
      wrong++;
    }
    compilation_free(c);
  }
  assert_int_equal(wrong, 0);
}

/* An unreadable file is an error without a position. */
static void test_missing_file(void **state) {
  (void)state;
  Compilation *c = compile_file("tests/errors/no_such_file.nn");
  assert_non_null(c);
  assert_null(c->graph);
  assert_int_equal(c->diags.errors, 1);
  const Diag *g = c->diags.first;
  assert_non_null(g);
  assert_null(g->loc.src);
  assert_string_equal(g->msg, "cannot read 'tests/errors/no_such_file.nn': No such "
                              "file or directory");
  char *text = format_diag(g);
  assert_string_equal(text, "gradc: error: cannot read 'tests/errors/no_such_file.nn': "
                            "No such file or directory\n");
  free(text);
  compilation_free(c);
}

/* A directory is not a model file either (fread fails with EISDIR). */
static void test_directory_as_file(void **state) {
  (void)state;
  Compilation *c = compile_file("models");
  assert_non_null(c);
  assert_null(c->graph);
  assert_int_equal(c->diags.errors, 1);
  assert_null(c->diags.first->loc.src);
  assert_non_null(strstr(c->diags.first->msg, "cannot read 'models'"));
  compilation_free(c);
}

/* 300 nested parentheses or unary minuses: an error, no stack overflow. */
static void test_deep_nesting(void **state) {
  (void)state;
  static const char *const shapes[][3] = {
      {"(", "x", ")"}, {"-", "x", ""}, {"relu(", "x", ")"}, {"[", "1", "]"},
      {"-(", "x", ")"},
  };
  for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
    size_t cap = 64 + 300 * 8;
    char *src = malloc(cap);
    assert_non_null(src);
    strcpy(src, "input x : f32\ny = ");
    for (int i = 0; i < 300; i++) strcat(src, shapes[k][0]);
    strcat(src, shapes[k][1]);
    for (int i = 0; i < 300; i++) strcat(src, shapes[k][2]);
    strcat(src, "\n");
    Compilation *c = compile_str(src);
    assert_null(c->graph);
    assert_int_equal(c->diags.errors, 1);
    const Diag *g = c->diags.first;
    assert_int_equal(g->loc.line, 2);
    if (!strstr(g->msg, "nested too deeply"))
      fail_msg("shape %zu: %s", k, g->msg);
    char *text = format_diag(g);
    free(text);
    compilation_free(c);
    free(src);
  }
  /* 300 chained ** (right-associative) recurse like unary minus. */
  char src[64 + 300 * 3] = "input x : f32\ny = x";
  for (int i = 0; i < 300; i++) strcat(src, "**x");
  Compilation *c = compile_str(src);
  assert_null(c->graph);
  assert_int_equal(c->diags.errors, 1);
  assert_non_null(strstr(c->diags.first->msg, "nested too deeply"));
  compilation_free(c);
}

/* Nesting just inside the limit still compiles. */
static void test_nesting_within_limit(void **state) {
  (void)state;
  char src[64 + 150 * 8] = "input x : f32\ny = ";
  for (int i = 0; i < 150; i++) strcat(src, "relu(");
  strcat(src, "x");
  for (int i = 0; i < 150; i++) strcat(src, ")");
  strcat(src, "\noutput y\n");
  Compilation *c = compile_str(src);
  if (!c->graph) diag_print(stderr, &c->diags);
  assert_non_null(c->graph);
  assert_int_equal(c->diags.errors, 0);
  compilation_free(c);
}

int main(void) {
  enum { NCASES = sizeof cases / sizeof *cases };
  static const struct CMUnitTest fixed[] = {
      cmocka_unit_test(test_render_unknown_identifier),
      cmocka_unit_test(test_render_shape_mismatch),
      cmocka_unit_test(test_render_unterminated_on_earlier_line),
      cmocka_unit_test(test_render_long_underline),
      cmocka_unit_test(test_render_tab_alignment),
      cmocka_unit_test(test_render_non_ascii_byte),
      cmocka_unit_test(test_render_nul_byte),
      cmocka_unit_test(test_render_crlf_line_ends),
      cmocka_unit_test(test_render_last_line_without_newline),
      cmocka_unit_test(test_first_error_stops),
      cmocka_unit_test(test_def_error_note),
      cmocka_unit_test(test_unused_param_warning),
      cmocka_unit_test(test_two_warnings_in_order),
      cmocka_unit_test(test_used_param_no_warning),
      cmocka_unit_test(test_param_as_output_or_loss_is_used),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_directory_as_file),
      cmocka_unit_test(test_deep_nesting),
      cmocka_unit_test(test_nesting_within_limit),
  };
  enum { NFIXED = sizeof fixed / sizeof *fixed };
  struct CMUnitTest tests[NCASES + NFIXED];
  for (size_t i = 0; i < NCASES; i++)
    tests[i] = (struct CMUnitTest){.name = cases[i].name, .test_func = run_case,
                                   .initial_state = (void *)&cases[i]};
  for (size_t i = 0; i < NFIXED; i++) tests[NCASES + i] = fixed[i];
  return cmocka_run_group_tests_name("errors", tests, NULL, NULL);
}
