package access

import (
	"errors"
	"fmt"

	"switchyard/delivery"
)

// errorDetails is delivery.Errorf with details for the platform error
// contract.
func errorDetails(code string, details map[string]any, format string, args ...any) error {
	return &delivery.Error{Code: code, Message: fmt.Sprintf(format, args...), Details: details}
}

// internal wraps an internal failure as an delivery.EINTERNAL *delivery.Error whose
// message is generic and whose cause (for the log) keeps the context.
func internal(context string, err error) error {
	return &delivery.Error{Code: delivery.EINTERNAL, Message: "internal error", Cause: fmt.Errorf("%s: %w", context, err)}
}

func asDeliveryError(err error) (*delivery.Error, bool) {
	var e *delivery.Error
	ok := errors.As(err, &e)
	return e, ok
}
