/*
 * confusion.c - `gradc eval --confusion FILE.svg` (issue 22): where a
 * classifier goes wrong, as the matrix of counts of (true class,
 * predicted class) over the test split, printed as text and drawn as an
 * SVG (rows the true class, columns the predicted one, as scikit-learn's
 * ConfusionMatrixDisplay draws it; a cell's colour is its count against
 * the largest, with a colour bar).
 *
 * A classifier here is what gradc predict reads: the model's first output
 * holds class scores [batch, classes] (probabilities or logits: the
 * prediction is their argmax either way), and one i32 input [batch] takes
 * the labels.  Anything else is refused before the evaluation runs.
 *
 * Class names: --class-names a,b,... (one per class), or fashion-mnist;
 * without it Fashion-MNIST's names when the data directory's path says
 * fashion-mnist (the default data) and the model has 10 classes, else the
 * class indices.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { MAX_CLASSES = 1000, MAX_NAME = 64 };

/* Zalando's label descriptions (github.com/zalandoresearch/fashion-mnist). */
static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* The output with the class scores and the input part with the labels. */
typedef struct Classifier {
  const Binding *scores;
  int64_t classes;
  const FeedPart *labels;
} Classifier;

static gradc_status find_classifier(const Graph *g, const Feed *f, Classifier *c, RtError *err) {
  if (!g->noutputs)
    return rt_fail(err, GRADC_ERR_ARG, "--confusion needs a classifier, but the model declares no output; declare "
                   "its class scores, e.g. output probs = softmax(logits)");
  const Node *y = g->outputs[0].node;
  const Dim *d = y->shape.d;
  if (y->shape.rank != 2 || !dtype_is_float(y->dtype) || !d[0].sym || d[0].n != 1 || d[1].sym || d[1].n < 2) {
    char b[SHAPE_STR_MAX];
    return rt_fail(err, GRADC_ERR_ARG, "--confusion needs a classifier: the first output must hold class scores "
                   "[batch, classes] (at least 2), but '%s' is %s%s", g->outputs[0].name, dtype_names[y->dtype],
                   shape_str(g, &y->shape, b, sizeof b));
  }
  if (d[1].n > MAX_CLASSES)
    return rt_fail(err, GRADC_ERR_ARG, "--confusion draws at most %d classes; output '%s' has %lld", MAX_CLASSES,
                   g->outputs[0].name, (long long)d[1].n);
  c->scores = &g->outputs[0], c->classes = d[1].n, c->labels = NULL;
  for (int i = 0; i < f->n; i++) {
    const FeedPart *p = &f->part[i];
    if (p->dtype != DT_I32 || p->width != 1) continue;
    if (c->labels)
      return rt_fail(err, GRADC_ERR_ARG, "--confusion: which input holds the labels, '%s' or '%s'? (both are i32 "
                     "[batch])", c->labels->name, p->name);
    c->labels = p;
  }
  if (!c->labels)
    return rt_fail(err, GRADC_ERR_ARG, "--confusion needs the true classes: an i32 input of shape [batch] that the "
                   "data's labels feed, and the model has none");
  return GRADC_OK;
}

/* The names of the classes (names[k] for class k), as the brief of the
 * file says; buf holds what they point into. */
static gradc_status class_names(const TrainOptions *o, const Classifier *c, const char **names, char *buf,
                                size_t size, RtError *err) {
  int64_t n = c->classes;
  const char *spec = o->class_names;
  bool fashion = spec ? !strcmp(spec, "fashion-mnist") : n == 10 && o->data_dir && strcasestr(o->data_dir, "fashion-mnist");
  if (fashion) {
    if (n != 10)
      return rt_fail(err, GRADC_ERR_ARG, "--class-names fashion-mnist names 10 classes, but the model has %lld",
                     (long long)n);
    for (int k = 0; k < 10; k++) names[k] = fashion_names[k];
    return GRADC_OK;
  }
  size_t at = 0;
  if (!spec) {
    for (int64_t k = 0; k < n; k++) {
      names[k] = buf + at;
      at += (size_t)snprintf(buf + at, size - at, "%lld", (long long)k) + 1;
    }
    return GRADC_OK;
  }
  int64_t k = 0;
  for (const char *s = spec;; k++) {
    size_t len = strcspn(s, ",");
    if (k < n) {
      if (!len || len > MAX_NAME)
        return rt_fail(err, GRADC_ERR_ARG, "--class-names: name %lld is %s; expected 1 to %d characters",
                       (long long)k + 1, len ? "too long" : "empty", MAX_NAME);
      names[k] = buf + at;
      at += (size_t)snprintf(buf + at, size - at, "%.*s", (int)len, s) + 1;
    }
    if (!s[len]) break;
    s += len + 1;
  }
  if (k + 1 != n)
    return rt_fail(err, GRADC_ERR_ARG, "--class-names gives %lld name%s, but the model has %lld classes (output "
                   "'%s')", (long long)k + 1, k ? "s" : "", (long long)n, c->scores->name);
  return GRADC_OK;
}

gradc_status confusion_check(const gradc_model *m, const TrainOptions *o, const Feed *f, RtError *err) {
  Classifier c;
  gradc_status s = find_classifier(jitmodel_graph(m), f, &c, err);
  const char **names = s ? NULL : malloc(sizeof(char *) * (size_t)c.classes);
  char *buf = s ? NULL : malloc((size_t)c.classes * (MAX_NAME + 1));
  if (!s && (!names || !buf)) s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
  if (!s) s = class_names(o, &c, names, buf, (size_t)c.classes * (MAX_NAME + 1), err);
  free(names), free(buf);
  return s;
}

/* ------------------------------------------------------------ drawing */

/* A sequential colour from white-blue (t = 0) to dark blue (t = 1):
 * matplotlib's "Blues" end points. */
static void blues(double t, char *out, size_t size) {
  static const int lo[3] = {247, 251, 255}, hi[3] = {8, 48, 107};
  int c[3];
  for (int k = 0; k < 3; k++) c[k] = (int)(lo[k] + (hi[k] - lo[k]) * t + 0.5);
  snprintf(out, size, "#%02x%02x%02x", c[0], c[1], c[2]);
}

static void draw(FILE *f, const int64_t *count, int64_t n, const char *const *names, int64_t total,
                 int64_t right) {
  size_t longest = 1;
  for (int64_t k = 0; k < n; k++)
    if (strlen(names[k]) > longest) longest = strlen(names[k]);
  /* Sizes from the text: about 7 pixels a character at 12 pixels; the
   * column labels run up at 45 degrees, so they take 0.71 of that. */
  int cell = n <= 12 ? 52 : n <= 24 ? 32 : n <= 64 ? 16 : 8;
  int labelw = (int)longest * 7 + 10, slant = (int)(labelw * 0.71) + 6;
  int left = 34 + labelw, top = 64 + slant, side = (int)n * cell;
  int bar_x = left + side + 24, width = bar_x + 16 + 70, height = top + side + 24;
  if (left + side + slant + 10 > width) width = left + side + slant + 10;
  int64_t most = 1;
  for (int64_t i = 0; i < n * n; i++)
    if (count[i] > most) most = count[i];
  svg_begin(f, width, height);
  fprintf(f, "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">confusion matrix: %lld samples, "
          "accuracy %.4f</text>\n", (long long)total, total ? (double)right / (double)total : 0.0);
  fprintf(f, "<text x=\"%d\" y=\"44\" font-size=\"13\" text-anchor=\"middle\">predicted class</text>\n",
          left + side / 2);
  fprintf(f, "<text x=\"18\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\" transform=\"rotate(-90 18 %d)\">"
          "true class</text>\n", top + side / 2, top + side / 2);
  char colour[8];
  int font = cell >= 40 ? 13 : 10;
  for (int64_t r = 0; r < n; r++)
    for (int64_t c = 0; c < n; c++) {
      double t = (double)count[r * n + c] / (double)most;
      blues(t, colour, sizeof colour);
      int x = left + (int)c * cell, y = top + (int)r * cell;
      fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" stroke=\"#cccccc\"/>\n", x, y, cell,
              cell, colour);
      if (cell >= 16)   /* smaller cells have no room for digits: the colour says it */
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"%d\" text-anchor=\"middle\" fill=\"%s\">%lld</text>\n",
                x + cell / 2, y + cell / 2 + font / 3, font, t > 0.5 ? "#ffffff" : "#000000",
                (long long)count[r * n + c]);
    }
  /* the diagonal, the right answers, outlined */
  for (int64_t k = 0; k < n; k++)
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333333\" "
            "stroke-width=\"1.5\"/>\n", left + (int)k * cell, top + (int)k * cell, cell, cell);
  int step = cell >= 12 ? 1 : (int)(12 / cell) + 1;   /* labels 12 pixels apart at least */
  for (int64_t k = 0; k < n; k += step) {
    int mid = (int)k * cell + cell / 2;
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">", left - 6, top + mid + 4);
    svg_text(f, names[k]);
    fprintf(f, "</text>\n<text x=\"%d\" y=\"%d\" font-size=\"12\" transform=\"rotate(-45 %d %d)\">", left + mid + 4,
            top - 6, left + mid + 4, top - 6);
    svg_text(f, names[k]);
    fputs("</text>\n", f);
  }
  /* the colour bar: 0 at the bottom, the largest count at the top */
  fprintf(f, "<defs><linearGradient id=\"scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
          "<stop offset=\"0\" stop-color=\"#f7fbff\"/><stop offset=\"1\" stop-color=\"#08306b\"/>"
          "</linearGradient></defs>\n"
          "<rect x=\"%d\" y=\"%d\" width=\"16\" height=\"%d\" fill=\"url(#scale)\" stroke=\"#999999\"/>\n"
          "<text x=\"%d\" y=\"%d\" font-size=\"11\">%lld</text>\n<text x=\"%d\" y=\"%d\" font-size=\"11\">0</text>\n",
          bar_x, top, side, bar_x + 20, top + 10, (long long)most, bar_x + 20, top + side);
  fputs("</svg>\n", f);
}

/* The matrix as text: a row per true class, its name after the index;
 * the columns by index (names would not fit above them). */
static void print_matrix(FILE *out, const int64_t *count, int64_t n, const char *const *names) {
  int64_t most = 0;
  int namew = 0;
  for (int64_t i = 0; i < n * n; i++)
    if (count[i] > most) most = count[i];
  for (int64_t k = 0; k < n; k++) {
    char index[24];
    snprintf(index, sizeof index, "%lld", (long long)k);
    if (strcmp(names[k], index) && (int)strlen(names[k]) + 1 > namew) namew = (int)strlen(names[k]) + 1;
  }
  int w = snprintf(NULL, 0, "%lld", (long long)(most > n ? most : n)) + 1;
  int idxw = snprintf(NULL, 0, "%lld", (long long)n);
  fprintf(out, "confusion matrix (rows: true class, columns: predicted class):\n%*s", idxw + namew, "");
  for (int64_t c = 0; c < n; c++) fprintf(out, " %*lld", w, (long long)c);
  fputc('\n', out);
  for (int64_t r = 0; r < n; r++) {
    /* names that are the indices (no --class-names) are not repeated */
    fprintf(out, "%*lld%s%-*s", idxw, (long long)r, namew ? " " : "", namew ? namew - 1 : 0, namew ? names[r] : "");
    for (int64_t c = 0; c < n; c++) fprintf(out, " %*lld", w, (long long)count[r * n + c]);
    fputc('\n', out);
  }
}

gradc_status cli_confusion(gradc_model *m, const TrainOptions *o, const Dataset *d, const Feed *f, RtError *err) {
  const Graph *g = jitmodel_graph(m);
  FILE *out = o->out ? o->out : stdout;
  Classifier c;
  gradc_status s = find_classifier(g, f, &c, err);
  if (s) return s;
  int64_t n = c.classes, right = 0;
  int64_t *count = calloc((size_t)(n * n), sizeof(int64_t)), *idx = malloc(sizeof(int64_t) * (size_t)o->batch);
  const char **names = malloc(sizeof(char *) * (size_t)n);
  char *buf = malloc((size_t)n * (MAX_NAME + 1));
  if (!count || !idx || !names || !buf) s = rt_fail(err, GRADC_ERR_NOMEM, "out of memory");
  if (!s) s = class_names(o, &c, names, buf, (size_t)n * (MAX_NAME + 1), err);
  for (int64_t at = 0; !s && at < d->n; at += o->batch) {
    int64_t bs = d->n - at < o->batch ? d->n - at : o->batch;
    if ((s = gradc_bind(m, bs))) {
      rt_fail(err, s, "%s", gradc_last_error(m));
      break;
    }
    for (int64_t i = 0; i < bs; i++) idx[i] = at + i;
    feed_gather(m, f, d, idx, bs);
    if ((s = gradc_forward(m))) {
      rt_fail(err, s, "%s", gradc_last_error(m));
      break;
    }
    int64_t have = 0;
    const void *p = gradc_data(m, c.scores->name, &have);
    const int32_t *label = gradc_data(m, c.labels->name, NULL);
    if (!p || !label || have != bs * n) {
      s = rt_fail(err, GRADC_ERR_ARG, "--confusion cannot read output '%s': %s", c.scores->name,
                  p && label ? "its size is not batch x classes" : gradc_last_error(m));
      break;
    }
    bool f64 = c.scores->node->dtype == DT_F64;
    for (int64_t i = 0; i < bs; i++) {
      int64_t best = 0;
      for (int64_t k = 1; k < n; k++) {
        double a = f64 ? ((const double *)p)[i * n + k] : ((const float *)p)[i * n + k];
        double b = f64 ? ((const double *)p)[i * n + best] : ((const float *)p)[i * n + best];
        if (a > b) best = k;
      }
      /* the labels as the model saw them: an out-of-range one is refused */
      if (label[i] < 0 || label[i] >= n) {
        s = rt_fail(err, GRADC_ERR_DATA, "--confusion: sample %lld (from 0) has label %d, expected a class in "
                    "[0, %lld) of output '%s'", (long long)(at + i), label[i], (long long)n, c.scores->name);
        break;
      }
      count[label[i] * n + best]++;
      right += label[i] == best;
    }
  }
  OutFile file = {0};
  if (!s) s = out_open(&file, o->confusion, err);
  if (!s) {
    draw(file.f, count, n, names, d->n, right);
    s = out_commit(&file, GRADC_OK, err);
  }
  if (!s) {
    print_matrix(out, count, n, names);
    fprintf(out, "confusion matrix of %lld classes drawn to %s\n", (long long)n, o->confusion);
  }
  free(count), free(idx), free(names), free(buf);
  return s;
}
