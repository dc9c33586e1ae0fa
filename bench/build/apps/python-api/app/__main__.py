"""Run the sample API."""

import uvicorn

uvicorn.run("app.main:app", host="0.0.0.0", port=8080)
