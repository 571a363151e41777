package httpserver_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/pierre-mcp/pierre/httpserver"
	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

func ExampleMountHealth() {
	key, _ := keyring.Generate()
	db, err := pierredb.Open("sqlite::memory:", key)
	if err != nil {
		panic(err)
	}
	defer db.Close()

	mux := http.NewServeMux()
	httpserver.MountHealth(mux, db)

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	fmt.Println(rec.Code)
	// Output: 200
}
