package httpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/pierre-mcp/pierre/pierredb"
)

// maxBodyBytes bounds every request body the handlers read: admin requests are
// a few hundred bytes.
const maxBodyBytes = 64 << 10

// errorBody is the JSON of every error answer: the reference server's
// {success: false, message}, plus a stable code a client can switch on.
type errorBody struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
	Code    string `json:"code"`
}

// Stable error codes of the JSON answers.
const (
	CodeBadRequest       = "bad_request"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeConflict         = "conflict"
	CodeRateLimited      = "rate_limited"
	CodeBodyTooLarge     = "body_too_large"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal_error"
)

// writeJSON answers with status and v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"success":false,"message":"the answer could not be encoded","code":"internal_error"}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeError answers with a JSON error.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorBody{Success: false, Message: message, Code: code})
}

// writeStoreError maps an error of pierredb onto a status and a message. The
// messages of pierredb's errors say what went wrong and what to do and hold no
// secret, so they are passed on for client errors; anything unexpected is a 500
// whose details go to the log only. The log names the route's pattern, not the
// request's path, where a client may have put a credential.
func writeStoreError(w http.ResponseWriter, log *slog.Logger, r *http.Request, err error) {
	var rl *pierredb.RateLimitError
	switch {
	case errors.As(err, &rl):
		setRetryAfter(w, rl.Reset)
		writeError(w, http.StatusTooManyRequests, CodeRateLimited, err.Error())
	case errors.Is(err, pierredb.ErrInvalidArgument), errors.Is(err, pierredb.ErrPasswordTooShort),
		errors.Is(err, pierredb.ErrPasswordTooLong):
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
	case errors.Is(err, pierredb.ErrInvalidCredential), errors.Is(err, pierredb.ErrExpired),
		errors.Is(err, pierredb.ErrRevoked), errors.Is(err, pierredb.ErrInvalidCredentials):
		writeError(w, http.StatusUnauthorized, CodeUnauthorized, err.Error())
	case errors.Is(err, pierredb.ErrPermissionDenied):
		writeError(w, http.StatusForbidden, CodeForbidden, err.Error())
	case errors.Is(err, pierredb.ErrNotFound):
		writeError(w, http.StatusNotFound, CodeNotFound, err.Error())
	case errors.Is(err, pierredb.ErrAlreadyExists), errors.Is(err, pierredb.ErrConflict):
		writeError(w, http.StatusConflict, CodeConflict, err.Error())
	case errors.Is(err, pierredb.ErrReadOnly):
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the database is open read-only; this instance cannot change it")
	case errors.Is(err, pierredb.ErrUnreachable), errors.Is(err, pierredb.ErrBusy), errors.Is(err, pierredb.ErrClosed):
		log.Warn("httpserver: database unavailable", "method", r.Method, "route", r.Pattern, "err", err.Error())
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the database is unavailable; try again later")
	default:
		log.Error("httpserver: request failed", "method", r.Method, "route", r.Pattern, "err", err.Error())
		writeError(w, http.StatusInternalServerError, CodeInternal, "internal error")
	}
}

// setRetryAfter says in whole seconds (at least one) when to try again.
func setRetryAfter(w http.ResponseWriter, reset time.Time) {
	secs := int64(time.Until(reset).Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
}

// decodeBody reads a JSON object of at most maxBodyBytes into v, refusing
// unknown fields and trailing data. It writes the error answer itself and
// returns false when the body is unusable.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	return decode(w, r, v, false)
}

// decodeOptionalBody is decodeBody for the routes whose body is optional (the
// reference's scripts send {} or {"reason": ...}, others nothing): no body, or
// an empty one however it is sent (with Content-Length: 0, or chunked with no
// data), leaves v alone.
func decodeOptionalBody(w http.ResponseWriter, r *http.Request, v any) bool {
	return decode(w, r, v, true)
}

func decode(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	if r.Body == nil || r.Body == http.NoBody {
		if optional {
			return true
		}
		writeError(w, http.StatusBadRequest, CodeBadRequest, "request body is empty; send a JSON object")
		return false
	}
	body := http.MaxBytesReader(w, r.Body, maxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("data after the JSON object")
		}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case optional && err == io.EOF: // no JSON value at all
		return true
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, CodeBodyTooLarge, fmt.Sprintf("request body is larger than %d bytes", maxBodyBytes))
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, CodeBadRequest, "request body is empty; send a JSON object")
	default:
		writeError(w, http.StatusBadRequest, CodeBadRequest, "request body is not valid JSON for this route: "+jsonProblem(err))
	}
	return false
}

// jsonProblem describes a decoding error without echoing the request's values.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("syntax error at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be %s", typ.Field, typ.Type)
	default:
		// encoding/json's messages for unknown fields name the field only.
		return err.Error()
	}
}
