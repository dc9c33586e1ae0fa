// Command server is a small HTTP service used as a build-benchmark sample.
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"

	"github.com/BurntSushi/toml"
	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
)

type config struct {
	Addr string `toml:"addr"`
}

func loadConfig(path string) config {
	cfg := config{Addr: ":8080"}
	if _, err := os.Stat(path); err == nil {
		if _, err := toml.DecodeFile(path, &cfg); err != nil {
			log.Fatalf("config: %v", err)
		}
	}
	return cfg
}

func main() {
	cfg := loadConfig("config.toml")
	r := chi.NewRouter()
	r.Get("/id", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"id": uuid.NewString()})
	})
	log.Printf("listening on %s", cfg.Addr)
	log.Fatal(http.ListenAndServe(cfg.Addr, r))
}
