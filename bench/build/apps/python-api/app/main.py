"""Sample API: one endpoint that reads its settings and reports them."""

import structlog
from fastapi import FastAPI
from pydantic_settings import BaseSettings

log = structlog.get_logger()


class Settings(BaseSettings):
    """Settings read from the environment."""

    database_url: str = "postgresql://localhost/app"
    redis_url: str = "redis://localhost:6379/0"


app = FastAPI()
settings = Settings()


@app.get("/health")
def health() -> dict[str, str]:
    """Report that the service is up and where it keeps its data."""
    log.info("health")
    return {"status": "ok", "database": settings.database_url.split("@")[-1]}
