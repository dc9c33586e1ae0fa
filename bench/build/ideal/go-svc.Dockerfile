FROM 127.0.0.1:5000/bench/golang:1.19-slim-bookworm-localproxy
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -o /usr/local/bin/server .
EXPOSE 8080
CMD ["server"]
