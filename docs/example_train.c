/* Trains models/mnist_mlp.nn on Fashion-MNIST through include/gradc.h.
 *   cc docs/example_train.c $(pkg-config --cflags --libs gradc) -o example     (gradc installed)
 *   ./example models/mnist_mlp.nn /usr/share/datasets/fashion-mnist [epochs] */
#include <stdio.h>
#include <stdlib.h>

#include "gradc.h"

static int die(const char *what, const gradc_model *m) {
  fprintf(stderr, "%s: %s\n", what, gradc_last_error(m));
  return 1;
}

int main(int argc, char **argv) {
  const char *model = argc > 1 ? argv[1] : "models/mnist_mlp.nn";
  const char *dir = argc > 2 ? argv[2] : "/usr/share/datasets/fashion-mnist";
  int epochs = argc > 3 ? atoi(argv[3]) : 1;
  const int64_t batch = 128;
  gradc_model *m;
  gradc_dataset *train, *test;
  if (gradc_compile_file(model, NULL, &m)) return die("compile", NULL);
  if (gradc_dataset_load(dir, 1, &train) || gradc_dataset_load(dir, 0, &test)) {
    fprintf(stderr, "data: %s\n", gradc_last_error(NULL));
    gradc_free(m);
    return 1;
  }
  int64_t n = gradc_dataset_size(train);
  int64_t *order = malloc(sizeof *order * (size_t)n);
  for (int64_t i = 0; i < n; i++) order[i] = i;
  for (int e = 0; e < epochs; e++) {
    for (int64_t i = n - 1; i > 0; i--) {           /* shuffle each epoch */
      int64_t j = rand() % (i + 1), t = order[i];
      order[i] = order[j], order[j] = t;
    }
    double sum = 0;
    for (int64_t at = 0; at < n; at += batch) {
      int64_t bs = n - at < batch ? n - at : batch;
      double loss;
      if (gradc_dataset_feed(train, m, order, at, bs) || gradc_train_step(m, &loss))
        return die("train", m);
      sum += loss * (double)bs;
    }
    printf("epoch %d: loss %.4f\n", e + 1, sum / (double)n);
  }
  double correct = 0;
  int64_t nt = gradc_dataset_size(test);
  for (int64_t at = 0; at < nt; at += batch) {
    int64_t bs = nt - at < batch ? nt - at : batch;
    if (gradc_dataset_feed(test, m, NULL, at, bs) || gradc_forward(m)) return die("eval", m);
    correct += *(float *)gradc_data(m, "accuracy", NULL) * (double)bs;
  }
  printf("test accuracy: %.4f\n", correct / (double)nt);
  free(order);
  gradc_dataset_free(train);
  gradc_dataset_free(test);
  gradc_free(m);
  return 0;
}
