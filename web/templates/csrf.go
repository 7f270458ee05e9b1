package templates

import "context"

type csrfKey struct{}

// WithCSRF puts the CSRF token of the request in ctx, for CSRFField. The
// token travels in the context, not in every view model, so that no form
// can be written without it by forgetting a field.
func WithCSRF(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, csrfKey{}, token)
}

func csrfFrom(ctx context.Context) string {
	t, _ := ctx.Value(csrfKey{}).(string)
	return t
}
