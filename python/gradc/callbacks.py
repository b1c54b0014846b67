"""Keras-style callbacks for Model.fit: objects with any of on_train_begin,
on_train_end (logs), on_epoch_begin, on_epoch_end (epoch, logs) and
on_train_batch_end (batch, logs), and set_model(model).  fit calls what an
object has, so Keras' own callback classes' shapes work too; these three
are the common ones, written for gradc's model."""


class Callback:
    def set_model(self, model):
        self.model = model


class LambdaCallback(Callback):
    """Calls the functions given: LambdaCallback(on_epoch_end=lambda e, logs: ...)."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_end=None):
        for name, fn in list(locals().items()):
            if name != "self" and fn is not None:
                setattr(self, name, fn)


class LearningRateScheduler(Callback):
    """Sets the learning rate before each epoch to schedule(epoch, lr), as
    Keras' does; gradc's lr is a run-time hyperparameter (set_hyper), so
    no recompilation."""

    def __init__(self, schedule, step=None):
        self.schedule, self.step = schedule, step

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.model.get_hyper("lr", self.step)
        self.model.set_hyper("lr", self.schedule(epoch, lr), self.step)
