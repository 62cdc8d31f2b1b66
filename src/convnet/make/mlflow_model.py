"""A convnet run as an MLflow pyfunc model, logged from this file's code (MLflow's
"models from code"), so that loading it unpickles nothing.

``mlflow.pyfunc.load_model(uri).predict(frame)`` takes a pandas DataFrame with a ``path``
column of image files and returns one row per image: ``prediction`` and a probability
column per class, what `convnet predict --csv` gives for the same files.
"""

from __future__ import annotations

import mlflow


class ConvnetModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from convnet.runs.run import load

        self.run = load(context.artifacts["run"])

    def predict(self, context, model_input, params=None):
        import pandas as pd

        paths = list(model_input["path"])
        rows = []
        for answer in self.run.predict_files(paths):
            probabilities = answer.probabilities or {}
            best = answer.top(1)[0][0] if probabilities else None
            rows.append({"path": answer.path, "prediction": best,
                         **{name: probabilities.get(name) for name in self.run.classes},
                         "error": answer.error})
        return pd.DataFrame(rows)


mlflow.models.set_model(ConvnetModel())
