"""A churn-scoring API (FastAPI + scikit-learn) used as a build-benchmark sample."""
