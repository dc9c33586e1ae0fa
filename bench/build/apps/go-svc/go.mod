module example.com/go-svc

go 1.19

require (
	github.com/BurntSushi/toml v1.2.0
	github.com/go-chi/chi/v5 v5.0.7
	github.com/google/uuid v1.3.0
)
