"""The seed documents' scenarios as an MLproject: train real Keras models and log them to MLflow.

``python -m projects.run SCENARIO ...`` is what each ``MLproject`` entry point calls. The package
only trains and logs; every diagnostic comes from ``mlflow_plateau``.
"""
