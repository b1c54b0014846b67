/*
 * test_train.c - the runtime end to end on small synthetic data: IDX files
 * written to a temporary directory, compiled models trained through the
 * public API and the training loop, checkpoints saved, resumed and refused,
 * the example driver's API calls, and numeric checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "cli.h"
#include "gradc.h"
#include "runtime.h"

static char dir[256];

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* 8x8 images of 4 classes: class c lights rows 2c and 2c+1, plus noise
 * from a fixed LCG, so a linear model separates them. */
static void write_split(const char *prefix, int n, uint32_t seed, bool gz) {
  unsigned char *img = malloc((size_t)n * 64 + 16), *lab = malloc((size_t)n + 8);
  put_be32(img, 2051), put_be32(img + 4, (uint32_t)n), put_be32(img + 8, 8), put_be32(img + 12, 8);
  put_be32(lab, 2049), put_be32(lab + 4, (uint32_t)n);
  for (int i = 0; i < n; i++) {
    int c = i % 4;
    lab[8 + i] = (unsigned char)c;
    for (int p = 0; p < 64; p++) {
      seed = seed * 1664525u + 1013904223u;
      int noise = (int)(seed >> 26);              /* 0..63 */
      int row = p / 8;
      img[16 + i * 64 + p] = (unsigned char)((row / 2 == c ? 180 : 20) + noise);
    }
  }
  char path[512];
  const char *ext = gz ? ".gz" : "";
  snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, prefix, ext);
  if (gz) {
    gzFile f = gzopen(path, "wb");
    gzwrite(f, img, (unsigned)(n * 64 + 16));
    gzclose(f);
  } else {
    FILE *f = fopen(path, "wb");
    fwrite(img, 1, (size_t)n * 64 + 16, f);
    fclose(f);
  }
  snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte%s", dir, prefix, ext);
  FILE *f = fopen(path, "wb");
  fwrite(lab, 1, (size_t)n + 8, f);   /* plain labels: gz optional per file */
  fclose(f);
  if (gz) {                            /* the loader finds x.gz or x: rename */
    char plain[512];
    snprintf(plain, sizeof plain, "%s/%s-labels-idx1-ubyte", dir, prefix);
    rename(path, plain);
  }
  free(img);
  free(lab);
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/gradc-train-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  write_split("train", 400, 1, true);
  write_split("t10k", 100, 2, false);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd);
}

static const char *model_src =
    "input x : f32[batch, 8, 8]\n"
    "input y : i32[batch]\n"
    "h = dense(flatten(x), 16, activation=relu)\n"
    "logits = dense(h, 4)\n"
    "output probs = softmax(logits)\n"
    "loss = mean(softmax_cross_entropy(logits, y))\n"
    "metric accuracy = mean(argmax(logits, axis=-1) == y)\n"
    "train loss with adam(lr=0.01)\n";

static gradc_model *compile_tiny(void) {
  gradc_options o;
  gradc_options_default(&o);
  o.threads = 1;
  gradc_model *m = NULL;
  gradc_status s = gradc_compile_string("blobs.nn", model_src, &o, &m);
  if (s) print_error("%s\n", gradc_last_error(NULL));
  assert_int_equal(s, GRADC_OK);
  return m;
}

static double accuracy_line(const char *text, const char *key) {
  const char *p = strstr(text, key);
  assert_non_null(p);
  return atof(p + strlen(key));
}

static char *run_train(gradc_model *m, TrainOptions *t, gradc_status want) {
  char *text = NULL;
  size_t len = 0;
  t->out = open_memstream(&text, &len);
  RtError err = {{0}};
  gradc_status s = cli_train(m, t, &err);
  fclose(t->out);
  if (s != want) print_error("cli_train: %s\n%s\n", err.msg, text);
  assert_int_equal(s, want);
  return text;
}

static void test_train_loop(void **state) {
  (void)state;
  gradc_model *m = compile_tiny();
  char hist[300], ckpt[300];
  snprintf(hist, sizeof hist, "%s/history.csv", dir);
  snprintf(ckpt, sizeof ckpt, "%s/blobs.ckpt", dir);
  TrainOptions t = {.data_dir = dir, .epochs = 8, .batch = 32, .seed = 3, .val_split = 0.2,
                    .history = hist, .save = ckpt, .test = true};
  char *text = run_train(m, &t, GRADC_OK);
  /* Keras-style lines, validation, the test result and the checkpoint. */
  assert_non_null(strstr(text, "Epoch 8/8"));
  assert_non_null(strstr(text, "10/10 [==============================]"));   /* 320/32 */
  assert_non_null(strstr(text, "val_accuracy: "));
  assert_true(accuracy_line(text, "test_accuracy: ") > 0.95);
  assert_non_null(strstr(text, "saved checkpoint"));
  free(text);
  FILE *f = fopen(hist, "r");
  assert_non_null(f);
  char line[512];
  assert_non_null(fgets(line, sizeof line, f));
  assert_string_equal(line, "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n");
  int rows = 0;
  while (fgets(line, sizeof line, f)) rows++;
  fclose(f);
  assert_int_equal(rows, 8);

  /* A fresh model from the checkpoint evaluates like the trained one. */
  gradc_model *m2 = compile_tiny();
  assert_int_equal(gradc_load(m2, ckpt), GRADC_OK);
  const char *names[] = {"h.kernel", "h.bias", "logits.kernel", "h.kernel/m", "optimizer/iterations"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    int64_t c1, c2;
    void *a = gradc_data(m, names[i], &c1), *b = gradc_data(m2, names[i], &c2);
    assert_non_null(a);
    assert_int_equal(c1, c2);
    assert_memory_equal(a, b, (size_t)c1 * 4);
  }
  gradc_free(m2);
  gradc_free(m);
}

static void test_checkpoint_mismatch(void **state) {
  (void)state;
  gradc_model *m = compile_tiny();
  char ckpt[300];
  snprintf(ckpt, sizeof ckpt, "%s/other.ckpt", dir);
  assert_int_equal(gradc_save(m, ckpt), GRADC_OK);
  gradc_options o;
  gradc_options_default(&o);
  gradc_model *other = NULL;
  assert_int_equal(gradc_compile_string("blobs.nn",
                                        "input x : f32[batch, 64]\ninput y : i32[batch]\n"
                                        "logits = dense(x, 4)\n"
                                        "loss = mean(softmax_cross_entropy(logits, y))\n"
                                        "train loss with sgd()\n",
                                        &o, &other),
                   GRADC_OK);
  float before = *(float *)gradc_data(other, "logits.kernel", NULL);
  gradc_status s = gradc_load(other, ckpt);
  assert_int_equal(s, GRADC_ERR_CHECKPOINT);
  assert_non_null(strstr(gradc_last_error(other), "logits.kernel"));
  assert_true(*(float *)gradc_data(other, "logits.kernel", NULL) == before);  /* unchanged */
  gradc_free(other);
  gradc_free(m);
}

static void test_data_errors(void **state) {
  (void)state;
  gradc_model *m = compile_tiny();
  TrainOptions t = {.data_dir = "/nonexistent/gradc-data", .epochs = 1, .batch = 32, .seed = 1};
  char *text = run_train(m, &t, GRADC_ERR_IO);
  free(text);
  t.data_dir = dir;
  t.batch = 100000;                     /* larger than the dataset */
  text = run_train(m, &t, GRADC_ERR_ARG);
  free(text);
  gradc_free(m);
  /* A model whose input does not fit 8x8 images. */
  gradc_options o;
  gradc_options_default(&o);
  gradc_model *w = NULL;
  assert_int_equal(gradc_compile_string("wide.nn",
                                        "input x : f32[batch, 784]\ninput y : i32[batch]\n"
                                        "loss = mean(softmax_cross_entropy(dense(x, 10), y))\n"
                                        "train loss with sgd()\n",
                                        &o, &w),
                   GRADC_OK);
  t.batch = 32;
  RtError err = {{0}};
  t.out = fopen("/dev/null", "w");
  assert_int_equal(cli_train(w, &t, &err), GRADC_ERR_DATA);
  fclose(t.out);
  assert_non_null(strstr(err.msg, "784 values per sample"));
  assert_non_null(strstr(err.msg, "64 values per sample"));
  gradc_free(w);
}

/* The calls the example driver makes (docs/example_train.c). */
static void test_dataset_api(void **state) {
  (void)state;
  gradc_model *m = compile_tiny();
  gradc_dataset *d = NULL;
  assert_int_equal(gradc_dataset_load(dir, 1, &d), GRADC_OK);
  assert_int_equal(gradc_dataset_size(d), 400);
  double first = 0, loss;
  for (int e = 0; e < 5; e++)
    for (int64_t at = 0; at < 400; at += 64) {
      int64_t bs = 400 - at < 64 ? 400 - at : 64;      /* a final partial batch */
      assert_int_equal(gradc_dataset_feed(d, m, NULL, at, bs), GRADC_OK);
      assert_int_equal(gradc_train_step(m, &loss), GRADC_OK);
      if (e == 0 && at == 0) first = loss;
    }
  assert_true(loss < first / 4);
  assert_int_equal(gradc_dataset_feed(d, m, NULL, 390, 20), GRADC_ERR_ARG);
  gradc_dataset *none = NULL;
  assert_int_not_equal(gradc_dataset_load("/nonexistent", 1, &none), GRADC_OK);
  assert_null(none);
  assert_non_null(strstr(gradc_last_error(NULL), "/nonexistent"));
  gradc_dataset_free(d);
  gradc_free(m);
}

/* --check-numerics: the first non-finite node is named with its line. */
static void test_check_numerics(void **state) {
  (void)state;
  gradc_options o;
  gradc_options_default(&o);
  o.check_numerics = 1;
  gradc_model *m = NULL;
  assert_int_equal(gradc_compile_string("nan.nn",
                                        "input x : f32[batch, 2]\n"
                                        "param w : f32[2] = 1\n"
                                        "z = log(x * w)\n"
                                        "loss = mean(z)\n"
                                        "train loss with sgd()\n",
                                        &o, &m),
                   GRADC_OK);
  assert_int_equal(gradc_bind(m, 2), GRADC_OK);
  float *x = gradc_data(m, "x", NULL);
  x[0] = 1, x[1] = 2, x[2] = -1, x[3] = 3;      /* log of a negative number */
  double loss;
  assert_int_equal(gradc_train_step(m, &loss), GRADC_ERR_NUMERIC);
  assert_true(isnan(loss));
  assert_non_null(strstr(gradc_last_error(m), "log"));
  assert_non_null(strstr(gradc_last_error(m), "nan.nn:3:"));
  gradc_free(m);
}

/* A CSV feeds the inputs in declaration order: x then y. */
static void test_csv_regression(void **state) {
  (void)state;
  char path[300];
  snprintf(path, sizeof path, "%s/points.csv", dir);
  FILE *f = fopen(path, "w");
  fprintf(f, "x,y\n");
  for (int i = 0; i < 50; i++) fprintf(f, "%g,%g\n", i / 10.0, 2.0 * (i / 10.0) + 1.0);
  fclose(f);
  gradc_model *m = NULL;
  assert_int_equal(gradc_compile_string("lr.nn",
                                        "input x : f32[batch]\ninput y : f32[batch]\n"
                                        "param w : f32 = 0\nparam b : f32 = 0\n"
                                        "loss = mean(square(w * x + b - y))\n"
                                        "train loss with sgd(lr=0.05)\n",
                                        NULL, &m),
                   GRADC_OK);
  TrainOptions t = {.data_dir = path, .epochs = 400, .batch = 50, .seed = 1, .test = true};
  char *text = run_train(m, &t, GRADC_OK);
  assert_null(strstr(text, "test:"));              /* a CSV has no test split */
  free(text);
  assert_true(fabsf(*(float *)gradc_data(m, "w", NULL) - 2.0f) < 0.01f);
  assert_true(fabsf(*(float *)gradc_data(m, "b", NULL) - 1.0f) < 0.03f);
  /* Three inputs' worth of columns expected, two present. */
  gradc_model *wide = NULL;
  assert_int_equal(gradc_compile_string("wide.nn",
                                        "input x : f32[batch, 2]\ninput y : f32[batch]\n"
                                        "param w : f32[2] = 0\nloss = mean(square(sum(w * x, axis=1) - y))\n"
                                        "train loss with sgd()\n",
                                        NULL, &wide),
                   GRADC_OK);
  RtError err = {{0}};
  t.out = fopen("/dev/null", "w");
  assert_int_equal(cli_train(wide, &t, &err), GRADC_ERR_DATA);
  fclose(t.out);
  assert_non_null(strstr(err.msg, "3 values per sample but the CSV has 2 columns"));
  gradc_free(wide);
  gradc_free(m);
}

/* A function applied twice with one set of parameters trains them with
 * the gradient of both applications: y = lin(x1) + lin(x2) with one w and
 * one b fits y = 2 (x1 + x2) + 2 only as w = 2, b = 1 (two separate
 * biases could share the 2 any way). */
static void test_shared_function_trains(void **state) {
  (void)state;
  char path[300];
  snprintf(path, sizeof path, "%s/pairs.csv", dir);
  FILE *f = fopen(path, "w");
  fprintf(f, "x1,x2,y\n");
  for (int i = 0; i < 50; i++) {
    double a = i / 10.0, b = (i * 7 % 50) / 25.0 - 1;
    fprintf(f, "%g,%g,%g\n", a, b, 2 * (a + b) + 2);
  }
  fclose(f);
  gradc_model *m = NULL;
  gradc_status s = gradc_compile_string("shared.nn",
                                        "input x1 : f32[batch]\ninput x2 : f32[batch]\n"
                                        "input y : f32[batch]\n"
                                        "def lin(x) {\n  param w : f32 = 0\n  param b : f32 = 0\n"
                                        "  return w * x + b\n}\n"
                                        "loss = mean(square(lin(x1) + lin(x2) - y))\n"
                                        "train loss with sgd(lr=0.02)\n",
                                        NULL, &m);
  if (s) print_error("%s\n", gradc_last_error(NULL));
  assert_int_equal(s, GRADC_OK);
  TrainOptions t = {.data_dir = path, .epochs = 600, .batch = 50, .seed = 1};
  free(run_train(m, &t, GRADC_OK));
  float w = *(float *)gradc_data(m, "lin.w", NULL), b = *(float *)gradc_data(m, "lin.b", NULL);
  if (!(fabsf(w - 2.0f) < 0.01f && fabsf(b - 1.0f) < 0.03f))
    fail_msg("lin.w = %g, lin.b = %g; want 2 and 1", w, b);
  gradc_free(m);
}

/* A workspace that cannot be allocated is an error naming the batch size
 * and the bytes; the model stays usable at a size that fits. */
static void test_workspace_allocation_failure(void **state) {
  (void)state;
  gradc_model *m = NULL;
  assert_int_equal(gradc_compile_string("big.nn",
                                        "input x : f32[batch, 549755813888]\n"
                                        "output y = x * 2\n", NULL, &m),
                   GRADC_OK);
  /* 2 x 2^39 floats x 2 buffers: 8 TB, more than any machine here. */
  assert_int_equal(gradc_bind(m, 2), GRADC_ERR_NOMEM);
  assert_non_null(strstr(gradc_last_error(m), "batch 2 "));
  assert_int_equal(gradc_forward(m), GRADC_ERR_ARG);      /* not bound */
  /* Past 2^62 bytes: reported, not wrapped around. */
  assert_int_equal(gradc_bind(m, 1 << 24), GRADC_ERR_NOMEM);
  assert_non_null(strstr(gradc_last_error(m), "2^62"));
  gradc_free(m);
  gradc_model *small = NULL;
  assert_int_equal(gradc_compile_string("small.nn", "input x : f32[batch, 4]\noutput y = x * 2\n",
                                        NULL, &small),
                   GRADC_OK);
  assert_int_equal(gradc_bind(small, 3), GRADC_OK);
  float *x = gradc_data(small, "x", NULL);
  for (int i = 0; i < 12; i++) x[i] = (float)i;
  assert_int_equal(gradc_forward(small), GRADC_OK);
  assert_true(((float *)gradc_data(small, "y", NULL))[11] == 22.0f);
  gradc_free(small);
}

/* bug (issue 15): gradc_train_step returned the loss as a float, so an f64
 * model's loss lost 29 bits: 1 + 1e-10 came back as 1.  It is a double in
 * the loss's precision: every bit of an f64 loss, an f32 loss widened
 * exactly.  x = 1 and w = 0 make the first loss the literal itself; SGD's
 * step (d/dw = 2 * 1/4 per weight) sets w = -0.25 for the second. */
static void test_loss_full_precision(void **state) {
  (void)state;
  static const char *const dtypes[] = {"f64", "f32"};
  for (int k = 0; k < 2; k++) {
    char src[256];
    snprintf(src, sizeof src,
             "input x : %s[batch, 2]\n"
             "param w : %s[2] = zeros\n"
             "loss = mean(x * w) + 1.0000000001\n"
             "train loss with sgd(lr=0.5)\n",
             dtypes[k], dtypes[k]);
    gradc_model *m = NULL;
    assert_int_equal(gradc_compile_string("loss_precision.nn", src, NULL, &m), GRADC_OK);
    assert_int_equal(gradc_bind(m, 2), GRADC_OK);
    void *x = gradc_data(m, "x", NULL);
    for (int i = 0; i < 4; i++) {
      if (k == 0) ((double *)x)[i] = 1;
      else ((float *)x)[i] = 1;
    }
    double first = 0, second = 0;
    assert_int_equal(gradc_train_step(m, &first), GRADC_OK);
    assert_int_equal(gradc_train_step(m, &second), GRADC_OK);
    if (k == 0) {
      assert_true(first == 1.0000000001);
      assert_true(first != (double)(float)first);  /* a float could not hold it */
      assert_true(second == -0.25 + 1.0000000001);
    } else {
      assert_true(first == (double)1.0000000001f);
      assert_true(second == (double)(-0.25f + 1.0000000001f));
    }
    gradc_free(m);
  }
}

static void test_api_misuse(void **state) {
  (void)state;
  assert_int_equal(gradc_bind(NULL, 4), GRADC_ERR_ARG);
  assert_int_equal(gradc_train_step(NULL, NULL), GRADC_ERR_ARG);
  gradc_free(NULL);
  gradc_model *m = compile_tiny();
  assert_int_equal(gradc_forward(m), GRADC_ERR_ARG);          /* not bound yet */
  assert_non_null(strstr(gradc_last_error(m), "gradc_bind"));
  assert_null(gradc_data(m, "x", NULL));
  assert_int_equal(gradc_bind(m, 0), GRADC_ERR_SHAPE);
  assert_int_equal(gradc_bind(m, 3), GRADC_OK);
  assert_null(gradc_data(m, "nope", NULL));
  assert_non_null(strstr(gradc_last_error(m), "nope"));
  int64_t c;
  assert_non_null(gradc_data(m, "x", &c));
  assert_int_equal(c, 3 * 64);
  gradc_tensor t;
  bool saw_state = false;
  for (int i = 0; i < gradc_tensor_count(m); i++) {
    assert_int_equal(gradc_tensor_info(m, i, &t), GRADC_OK);
    saw_state |= t.kind == GRADC_STATE;
    if (!strcmp(t.name, "x")) {
      assert_int_equal(t.rank, 3);
      assert_true(t.symbolic[0]);
      assert_int_equal(t.dims[0], 3);
    }
  }
  assert_true(saw_state);
  gradc_model *bad = NULL;
  assert_int_equal(gradc_compile_string("bad.nn", "input x : f32[2]\ny = x @ x\n", NULL, &bad),
                   GRADC_ERR_MODEL);
  assert_null(bad);
  assert_non_null(strstr(gradc_last_error(NULL), "bad.nn:2:7: error:"));
  gradc_free(m);
}

/* The optimizer's scalars are run-time state: setting lr through the API
 * changes the next step exactly as compiling with that lr does. */
static const char hyper_src[] = "input x : f32[batch, 4]\n"
                                "param W : f32[4, 3] = glorot_uniform\n"
                                "param b : f32[3] = zeros\n"
                                "loss = mean(square(x @ W + b))\n"
                                "train loss with rmsprop\n";

static gradc_model *compile_hyper(double lr) {
  gradc_options o;
  gradc_options_default(&o);
  o.lr = lr;
  gradc_model *m = NULL;
  assert_int_equal(gradc_compile_string("hyper.nn", hyper_src, &o, &m), GRADC_OK);
  assert_int_equal(gradc_bind(m, 2), GRADC_OK);
  float *x = gradc_data(m, "x", NULL);
  for (int i = 0; i < 8; i++) x[i] = (float)(i - 3) / 4;
  return m;
}

static bool same_params(gradc_model *a, gradc_model *b) {
  const char *names[] = {"W", "b", "W/rms", "b/rms"};
  for (int i = 0; i < 4; i++) {
    int64_t n;
    void *p = gradc_data(a, names[i], &n), *q = gradc_data(b, names[i], NULL);
    if (memcmp(p, q, sizeof(float) * (size_t)n)) return false;
  }
  return true;
}

static void step(gradc_model *m, int n) {
  for (int i = 0; i < n; i++) assert_int_equal(gradc_train_step(m, NULL), GRADC_OK);
}

static void test_hyper(void **state) {
  (void)state;
  gradc_model *a = compile_hyper(0), *b = compile_hyper(0.01), *c = compile_hyper(0);
  double v = 0;
  assert_int_equal(gradc_get_hyper(a, NULL, "lr", &v), GRADC_OK);
  assert_true(v == 0.001);                        /* Keras' default */
  assert_int_equal(gradc_get_hyper(b, "train", "lr", &v), GRADC_OK);
  assert_true(v == 0.01);                         /* gradc_options.lr */
  assert_int_equal(gradc_get_hyper(a, NULL, "rho", &v), GRADC_OK);
  assert_true(v == 0.9);
  assert_int_equal(gradc_get_hyper(a, NULL, "eps", &v), GRADC_OK);
  assert_true(v == 1e-7);
  /* a schedule: a steps at 0.001 then 0.01, b the other way round from
   * its compiled 0.01: the same bits */
  step(a, 1), step(c, 1);
  assert_int_equal(gradc_set_hyper(b, NULL, "lr", 0.001), GRADC_OK);
  step(b, 1);
  assert_true(same_params(a, b));
  assert_int_equal(gradc_set_hyper(a, "train", "lr", 0.01), GRADC_OK);
  assert_int_equal(gradc_set_hyper(b, NULL, "lr", 0.01), GRADC_OK);
  step(a, 2), step(b, 2), step(c, 2);
  assert_true(same_params(a, b));
  assert_false(same_params(a, c));                /* the new lr did change the step */
  gradc_model *d = compile_hyper(0.01), *e = compile_hyper(0);
  assert_int_equal(gradc_set_hyper(e, NULL, "lr", 0.01), GRADC_OK);
  step(d, 3), step(e, 3);
  assert_true(same_params(d, e));
  assert_int_equal(gradc_get_hyper(e, NULL, "lr", &v), GRADC_OK);
  assert_true(v == 0.01);
  /* unknown names, steps, NULLs */
  assert_int_equal(gradc_set_hyper(a, NULL, "beta1", 0.5), GRADC_ERR_ARG);
  assert_string_equal(gradc_last_error(a), "gradc_set_hyper: the rmsprop optimizer of step 'train' has "
                                           "no run-time hyperparameter 'beta1'; it has: lr, rho, eps");
  assert_int_equal(gradc_get_hyper(a, NULL, "momentum", &v), GRADC_ERR_ARG);
  assert_non_null(strstr(gradc_last_error(a), "'momentum'; it has: lr, rho, eps"));
  assert_int_equal(gradc_set_hyper(a, "eval", "lr", 0.5), GRADC_ERR_ARG);
  assert_string_equal(gradc_last_error(a),
                      "gradc_set_hyper: the model has no train step 'eval'; its steps are: train");
  assert_int_equal(gradc_set_hyper(NULL, NULL, "lr", 0.5), GRADC_ERR_ARG);
  assert_int_equal(gradc_set_hyper(a, NULL, NULL, 0.5), GRADC_ERR_ARG);
  assert_int_equal(gradc_get_hyper(a, NULL, "lr", NULL), GRADC_ERR_ARG);
  assert_int_equal(gradc_get_hyper(a, NULL, "lr", &v), GRADC_OK);
  assert_true(v == 0.01);                         /* failed calls changed nothing */
  /* the value survives a checkpoint */
  char path[300];
  snprintf(path, sizeof path, "%s/hyper.ckpt", dir);
  assert_int_equal(gradc_set_hyper(a, NULL, "lr", 0.0123), GRADC_OK);
  assert_int_equal(gradc_set_hyper(a, NULL, "rho", 0.75), GRADC_OK);
  assert_int_equal(gradc_save(a, path), GRADC_OK);
  gradc_model *f = compile_hyper(0);
  assert_int_equal(gradc_load(f, path), GRADC_OK);
  assert_int_equal(gradc_get_hyper(f, NULL, "lr", &v), GRADC_OK);
  assert_true(v == 0.0123);
  assert_int_equal(gradc_get_hyper(f, NULL, "rho", &v), GRADC_OK);
  assert_true(v == 0.75);
  assert_true(same_params(a, f));
  unlink(path);
  gradc_free(a), gradc_free(b), gradc_free(c), gradc_free(d), gradc_free(e), gradc_free(f);
}

/* A checkpoint written before the optimizer's scalars were state (it holds
 * the parameters and slots only) still loads: the scalars keep the model's
 * values.  Anything else missing is still refused. */
static void test_checkpoint_without_hypers(void **state) {
  (void)state;
  gradc_model *a = compile_hyper(0);
  for (int i = 0; i < 3; i++) assert_int_equal(gradc_train_step(a, NULL), GRADC_OK);
  static const char *const names[] = {"W", "b", "W/rms", "b/rms"};
  CkptTensor t[4];
  for (int i = 0; i < 4; i++) {
    gradc_tensor info = {0};
    for (int k = 0; k < gradc_tensor_count(a); k++)
      if (gradc_tensor_info(a, k, &info) == GRADC_OK && !strcmp(info.name, names[i])) break;
    assert_string_equal(info.name, names[i]);
    t[i] = (CkptTensor){.name = names[i], .dtype = info.dtype, .rank = info.rank,
                        .data = gradc_data(a, names[i], NULL)};
    for (int k = 0; k < info.rank; k++) t[i].dims[k] = info.dims[k];
  }
  char path[300];
  snprintf(path, sizeof path, "%s/old.ckpt", dir);
  RtError e = {{0}};
  assert_int_equal(ckpt_save(path, "hyper", t, 4, &e), GRADC_OK);
  gradc_model *f = compile_hyper(0.02);
  assert_int_equal(gradc_load(f, path), GRADC_OK);
  assert_true(same_params(a, f));
  double v;
  assert_int_equal(gradc_get_hyper(f, NULL, "lr", &v), GRADC_OK);
  assert_true(v == 0.02);
  /* without b/rms it is refused, naming it */
  assert_int_equal(ckpt_save(path, "hyper", t, 3, &e), GRADC_OK);
  assert_int_equal(gradc_load(f, path), GRADC_ERR_CHECKPOINT);
  assert_non_null(strstr(gradc_last_error(f), "'b/rms' is missing from the file"));
  unlink(path);
  gradc_free(a), gradc_free(f);
}

/* Any symbolic dimension binds by name; the workspace follows the whole
 * binding. */
static void test_bind_dim(void **state) {
  (void)state;
  gradc_model *m = NULL;
  assert_int_equal(gradc_compile_string("dims.nn", "input x : f32[batch, n]\n"
                                                   "output s = sum(x, axis=1)\n", NULL, &m),
                   GRADC_OK);
  assert_int_equal(gradc_bind_dim(m, "batch", 2), GRADC_OK);
  assert_int_equal(gradc_bind_dim(m, "n", 3), GRADC_OK);
  gradc_tensor t;
  assert_int_equal(gradc_tensor_info(m, 0, &t), GRADC_OK);
  assert_string_equal(t.name, "x");
  assert_int_equal(t.dims[0], 2);
  assert_int_equal(t.dims[1], 3);
  int64_t n;
  float *x = gradc_data(m, "x", &n);
  assert_int_equal(n, 6);
  for (int i = 0; i < 6; i++) x[i] = (float)(i + 1);
  assert_int_equal(gradc_forward(m), GRADC_OK);
  float *s = gradc_data(m, "s", &n);
  assert_int_equal(n, 2);
  assert_true(s[0] == 6 && s[1] == 15);
  /* n = 2 now: a new workspace, rows of two */
  assert_int_equal(gradc_bind_dim(m, "n", 2), GRADC_OK);
  x = gradc_data(m, "x", &n);
  assert_int_equal(n, 4);
  for (int i = 0; i < 4; i++) x[i] = (float)(i + 1);
  assert_int_equal(gradc_forward(m), GRADC_OK);
  s = gradc_data(m, "s", &n);
  assert_true(s[0] == 3 && s[1] == 7);
  assert_int_equal(gradc_bind_dim(m, "k", 2), GRADC_ERR_ARG);
  assert_string_equal(gradc_last_error(m), "gradc_bind_dim: the model has no symbolic dimension "
                                           "'k'; it has: 'batch', 'n'");
  assert_int_equal(gradc_bind_dim(m, "n", 0), GRADC_ERR_SHAPE);
  assert_int_equal(gradc_bind_dim(NULL, "n", 2), GRADC_ERR_ARG);
  assert_int_equal(gradc_bind(m, 5), GRADC_OK);      /* every dimension */
  assert_int_equal(gradc_tensor_info(m, 0, &t), GRADC_OK);
  assert_int_equal(t.dims[0], 5);
  assert_int_equal(t.dims[1], 5);
  gradc_free(m);
}

/* Adam on an f64 parameter: the step size lr*sqrt(1-b2^t)/(1-b1^t) is
 * computed in f64 (Keras: in the variable's dtype), so compiled steps equal
 * the same formula in C doubles to the bit.  Computed in f32, as before
 * optimizer.c, it was off by about 1e-8 relative. */
static void test_adam_f64_step_size(void **state) {
  (void)state;
  gradc_model *a = NULL;
  assert_int_equal(gradc_compile_string("adam64.nn", "param w : f64[2] = [1, -2]\n"
                                                     "loss = sum(w * w)\n"
                                                     "train loss with adam(lr=0.1)\n", NULL, &a),
                   GRADC_OK);
  assert_int_equal(gradc_bind(a, 1), GRADC_OK);
  double w[2] = {1, -2}, m[2] = {0, 0}, v[2] = {0, 0};
  const double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-7;
  for (int t = 1; t <= 3; t++) {
    assert_int_equal(gradc_train_step(a, NULL), GRADC_OK);
    double alpha = lr * sqrt(1 - pow(b2, t)) / (1 - pow(b1, t));
    for (int i = 0; i < 2; i++) {
      double gr = 2 * w[i];
      m[i] = m[i] + (gr - m[i]) * (1 - b1);
      v[i] = v[i] + (gr * gr - v[i]) * (1 - b2);
      w[i] = w[i] - m[i] * alpha / (sqrt(v[i]) + eps);
    }
    const double *got = gradc_data(a, "w", NULL);
    if (got[0] != w[0] || got[1] != w[1])
      fail_msg("step %d: w = [%a, %a], want [%a, %a]", t, got[0], got[1], w[0], w[1]);
  }
  gradc_free(a);
}

/* The descriptor (compiler/descriptor.c, runtime/abi.h) records the train
 * step: its name, loss, optimizer and run-time hyperparameters, each by the
 * index of the f64 state tensor that holds it; a model without a train
 * statement has no step (and no loss: `loss` is only a name there). */
static void test_descriptor_steps(void **state) {
  (void)state;
  Compilation *c = compile_model("hyper.nn", hyper_src, strlen(hyper_src), STAGE_OPT);
  assert_non_null(c->graph);
  Descriptor d;
  desc_build(c->graph, &d);
  const int64_t *h = d.desc;
  assert_int_equal(h[ABI_H_VERSION], ABI_VERSION);
  assert_int_equal(h[ABI_H_NSTEPS], 1);
  assert_int_equal(h[ABI_H_NHYPERS], 3);
  assert_int_equal(d.nsteps, 1);
  const int64_t *step = abi_step(h, 0);
  assert_string_equal(d.names[step[ABI_S_NAME]], "train");
  assert_string_equal(d.names[step[ABI_S_OPT_NAME]], "rmsprop");
  const int64_t *loss = abi_tensor(h, step[ABI_S_LOSS]);
  assert_int_equal(loss[ABI_T_KIND], ABI_LOSS);
  assert_string_equal(d.names[loss[ABI_T_NAME]], "loss");
  static const char *const hypers[] = {"lr", "rho", "eps"};
  assert_int_equal(step[ABI_S_NHYPER], 3);
  for (int k = 0; k < 3; k++) {
    const int64_t *p = abi_hyper(h, step[ABI_S_HYPER] + k);
    assert_string_equal(d.names[p[ABI_P_NAME]], hypers[k]);
    const int64_t *t = abi_tensor(h, p[ABI_P_TENSOR]);
    char want[40];
    snprintf(want, sizeof want, "optimizer/%s", hypers[k]);
    assert_string_equal(d.names[t[ABI_T_NAME]], want);
    assert_int_equal(t[ABI_T_KIND], ABI_STATE);
    assert_int_equal(t[ABI_T_DTYPE], DT_F64);
    assert_int_equal(t[ABI_T_RANK], 0);
  }
  /* the storage table closes the array: one entry per node */
  assert_int_equal(abi_size(h), (size_t)(abi_storage(h) - h) + (size_t)c->graph->nnodes);
  compilation_free(c);

  static const char forward_only[] = "input x : f32[batch, 2]\nparam w : f32[2] = ones\n"
                                     "loss = mean(square(x * w))\noutput y = x * w\n";
  c = compile_model("fwd.nn", forward_only, strlen(forward_only), STAGE_OPT);
  assert_non_null(c->graph);
  desc_build(c->graph, &d);
  assert_int_equal(d.desc[ABI_H_NSTEPS], 0);
  assert_int_equal(d.desc[ABI_H_NHYPERS], 0);
  int64_t nt = d.desc[ABI_H_NTENSORS];
  assert_int_equal(abi_tensor(d.desc, nt - 1)[ABI_T_KIND], ABI_OUTPUT);
  compilation_free(c);
}

/* Bindings beyond the cache of four workspaces reuse the oldest one's
 * memory or replace it, and every binding still computes what a fresh
 * model computes. */
static void test_workspace_cache(void **state) {
  (void)state;
  gradc_model *m = NULL;
  assert_int_equal(gradc_compile_string("rows.nn", "input x : f32[batch, 3]\noutput s = sum(x, axis=1)\n", NULL, &m),
                   GRADC_OK);
  static const int64_t batches[] = {8, 2, 5, 7, 3, 8, 1, 2, 6, 4, 8};
  for (size_t i = 0; i < sizeof batches / sizeof *batches; i++) {
    int64_t b = batches[i], n;
    assert_int_equal(gradc_bind(m, b), GRADC_OK);
    float *x = gradc_data(m, "x", &n);
    assert_int_equal(n, 3 * b);
    for (int64_t k = 0; k < n; k++) x[k] = (float)(k + i);
    assert_int_equal(gradc_forward(m), GRADC_OK);
    float *s = gradc_data(m, "s", &n);
    assert_int_equal(n, b);
    for (int64_t r = 0; r < b; r++) assert_true(s[r] == (float)(9 * r + 3 + 3 * (int64_t)i));
  }
  gradc_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_train_loop),     cmocka_unit_test(test_checkpoint_mismatch),
      cmocka_unit_test(test_data_errors),    cmocka_unit_test(test_dataset_api),
      cmocka_unit_test(test_check_numerics), cmocka_unit_test(test_api_misuse),
      cmocka_unit_test(test_csv_regression),
      cmocka_unit_test(test_shared_function_trains), cmocka_unit_test(test_workspace_allocation_failure),
      cmocka_unit_test(test_loss_full_precision),
      cmocka_unit_test(test_hyper),          cmocka_unit_test(test_bind_dim),
      cmocka_unit_test(test_adam_f64_step_size), cmocka_unit_test(test_checkpoint_without_hypers),
      cmocka_unit_test(test_descriptor_steps), cmocka_unit_test(test_workspace_cache),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
