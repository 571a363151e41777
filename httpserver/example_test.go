package httpserver_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/pierre-mcp/pierre/httpserver"
	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

// Mount the health endpoint and the admin API into a host's ServeMux, then run
// the first-admin setup.
func ExampleMount() {
	key, _ := keyring.Generate()
	db, err := pierredb.Open("sqlite::memory:", key)
	if err != nil {
		panic(err)
	}
	defer db.Close()

	mux := http.NewServeMux()
	httpserver.Mount(mux, db, httpserver.Options{})

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/health", nil))
	var h httpserver.Health
	_ = json.Unmarshal(rec.Body.Bytes(), &h)
	fmt.Println(rec.Code, h.Status, h.Database.Backend)

	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/admin/setup/status", nil))
	fmt.Print(rec.Body.String())
	// Output:
	// 200 healthy sqlite
	// {"admin_user_exists":false,"message":"No admin exists yet: POST /admin/setup with {email, password, display_name} to create the first one","needs_setup":true}
}
