package main

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/pierre-mcp/pierre/pierredb"
)

// registerRequest is the reference server's sign-up body.
type registerRequest struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	DisplayName string `json:"display_name"`
}

// registerHandler lets a person sign up: the account is pending until an admin
// approves it (POST /admin/approve-user/{id}, or the sqlite3 recipe in the
// README), unless auto-approval is on.
func registerHandler(db *pierredb.Database) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		var req registerRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"success": false, "code": "bad_request",
				"message": "send a JSON object {email, password, display_name}"})
			return
		}
		u, err := db.Users().Create(r.Context(), pierredb.NewUser{Email: req.Email, Password: req.Password, DisplayName: req.DisplayName})
		if err != nil {
			status, code := http.StatusInternalServerError, "internal_error"
			switch {
			case errors.Is(err, pierredb.ErrAlreadyExists):
				status, code = http.StatusConflict, "conflict"
			case errors.Is(err, pierredb.ErrInvalidArgument), errors.Is(err, pierredb.ErrPasswordTooShort), errors.Is(err, pierredb.ErrPasswordTooLong):
				status, code = http.StatusBadRequest, "bad_request"
			}
			msg := err.Error()
			if status == http.StatusInternalServerError {
				msg = "internal error"
			}
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]any{"success": false, "code": code, "message": msg})
			return
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "message": "registered; an admin must approve the account before it is used",
			"data": map[string]any{"user_id": u.ID, "email": u.Email, "user_status": u.Status}})
	})
}
