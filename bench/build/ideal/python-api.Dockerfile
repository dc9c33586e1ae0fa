FROM 127.0.0.1:5000/bench/python:3.11-slim-bookworm
WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN python3 -m compileall -q app
EXPOSE 8080
CMD ["python3", "-m", "app"]
