"""Churn-scoring API: a scikit-learn model behind FastAPI, with pandas/scipy summaries."""

import numpy as np
import pandas as pd
import structlog
from fastapi import FastAPI
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings
from scipy import stats
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

log = structlog.get_logger()

FEATURES = ["tenure_months", "monthly_spend", "support_tickets"]


class Settings(BaseSettings):
    """Settings read from the environment."""

    database_url: str = "postgresql://localhost/app"
    redis_url: str = "redis://localhost:6379/0"
    seed: int = 7


class Customer(BaseModel):
    """One customer to score."""

    tenure_months: float = Field(ge=0)
    monthly_spend: float = Field(ge=0)
    support_tickets: int = Field(ge=0)


def training_frame(seed: int, rows: int = 2000) -> pd.DataFrame:
    """Synthetic history: short tenure and many tickets make churn likely."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure_months": rng.gamma(2.0, 12.0, rows),
            "monthly_spend": rng.normal(60.0, 20.0, rows).clip(5.0),
            "support_tickets": rng.poisson(1.5, rows),
        }
    )
    logit = 0.8 * frame["support_tickets"] - 0.08 * frame["tenure_months"] - 0.01 * frame["monthly_spend"]
    frame["churned"] = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))
    return frame


settings = Settings()
history = training_frame(settings.seed)
model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=50, random_state=settings.seed))
model.fit(history[FEATURES], history["churned"])
app = FastAPI(title="churn-scoring")


@app.get("/health")
def health() -> dict[str, str]:
    """Report that the service is up and where it keeps its data."""
    log.info("health")
    return {"status": "ok", "database": settings.database_url.split("@")[-1]}


@app.post("/score")
def score(customers: list[Customer]) -> dict[str, list[float]]:
    """Churn probability for each customer."""
    frame = pd.DataFrame([c.model_dump() for c in customers], columns=FEATURES)
    return {"churn_probability": model.predict_proba(frame)[:, 1].round(4).tolist()}


@app.get("/stats")
def summary() -> dict[str, float]:
    """How tenure differs between churned and retained customers (Welch's t-test)."""
    churned = history.loc[history["churned"], "tenure_months"]
    kept = history.loc[~history["churned"], "tenure_months"]
    test = stats.ttest_ind(churned, kept, equal_var=False)
    return {
        "churn_rate": float(history["churned"].mean()),
        "tenure_t": float(test.statistic),
        "tenure_p": float(test.pvalue),
    }
