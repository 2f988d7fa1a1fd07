package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// Error is the API's one error shape: every non-2xx answer is an Error as
// JSON, {"error": "...", "detail": "..."}. Error is a short, stable phrase
// a program may match ("unauthorized", "conflict"); Detail is for people.
type Error struct {
	Status int    `json:"-"`
	Err    string `json:"error"`
	Detail string `json:"detail,omitempty"`
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Err
	}
	return e.Err + ": " + e.Detail
}

func apiError(status int, detail string) *Error {
	return &Error{Status: status, Err: phrase(status), Detail: detail}
}

// phrase is the Error field for a status.
func phrase(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not found"
	case http.StatusMethodNotAllowed:
		return "method not allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "request body too large"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	return "internal error"
}

// backendError maps a Backend error to the API's: the sentinels choose
// the status, the error's text is the detail.
func backendError(err error) *Error {
	var ae *Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, ErrConflict):
		return apiError(http.StatusConflict, detail(err, ErrConflict))
	case errors.Is(err, ErrNotFound):
		return apiError(http.StatusNotFound, detail(err, ErrNotFound))
	case errors.Is(err, ErrInvalid):
		return apiError(http.StatusBadRequest, detail(err, ErrInvalid))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return apiError(http.StatusServiceUnavailable, err.Error())
	}
	return apiError(http.StatusInternalServerError, err.Error())
}

// detail is err's text without the sentinel's word in front ("conflict:
// "), which the error field already says.
func detail(err, sentinel error) string {
	return strings.TrimPrefix(err.Error(), sentinel.Error()+": ")
}

// writeJSON answers with status and v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(apiError(status, "encode response: "+err.Error()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.Status, e)
}
