package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // exporters compress with gzip
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"switchyard/access"
	"switchyard/delivery"
)

// DefaultMaxGRPCMessage is the receive limit of the gRPC receiver when
// GRPCOptions.MaxMessage is zero: the same 8 MiB as the HTTP receiver's
// default body limit.
const DefaultMaxGRPCMessage = 8 << 20

// Authenticator turns a request's credentials into a principal.
// *access.Store implements it, the same as the HTTP server's.
type Authenticator interface {
	// Authenticate errors: delivery.EUNAUTHORIZED for missing, wrong or
	// expired credentials; anything else is internal.
	Authenticate(ctx context.Context, cred access.Credentials) (*access.Principal, error)
}

// Authorizer decides whether a principal may ingest. access.Policy
// implements it.
type Authorizer interface {
	// Authorize errors: delivery.EUNAUTHORIZED, delivery.EFORBIDDEN.
	Authorize(p *access.Principal, a access.Action, r access.Resource) error
}

// GRPCOptions configures a GRPCServer. Receiver and Auth are required.
type GRPCOptions struct {
	Receiver *Receiver
	Auth     Authenticator
	// Policy is the access policy; default access.Policy{}.
	Policy Authorizer
	// MaxMessage caps a request after decompression; larger ones get
	// codes.ResourceExhausted. Default DefaultMaxGRPCMessage; cmd/console
	// passes the HTTP receiver's body limit, so both take the same.
	MaxMessage int
	Logger     *slog.Logger
	// Count, when set, counts each export by the account that sent it and
	// how it ended ("success", "partial", "denied", "failure"), as the
	// HTTP receivers count theirs (web.Server.CountIngest).
	Count func(account, outcome string)
}

// GRPCServer is the OTLP/gRPC trace receiver (the collector's
// TraceService on port 4317). Every call is authenticated from the
// "authorization: Bearer …" metadata by the same access store as HTTP and
// authorized by the same policy (ingest on console:ingest) before its
// message is decoded; a malformed message gets codes.InvalidArgument, an
// oversized one codes.ResourceExhausted.
type GRPCServer struct {
	coltrace.UnimplementedTraceServiceServer
	recv    *Receiver
	auth    Authenticator
	policy  Authorizer
	log     *slog.Logger
	srv     *grpc.Server
	countFn func(account, outcome string)
}

// NewGRPCServer validates o and registers the TraceService.
func NewGRPCServer(o GRPCOptions) (*GRPCServer, error) {
	if o.Receiver == nil || o.Auth == nil {
		return nil, errors.New("tracing grpc: a receiver and an authenticator are required")
	}
	if o.MaxMessage < 0 {
		return nil, errors.New("tracing grpc: max message must not be negative")
	}
	if o.MaxMessage == 0 {
		o.MaxMessage = DefaultMaxGRPCMessage
	}
	if o.Policy == nil {
		o.Policy = access.Policy{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	g := &GRPCServer{recv: o.Receiver, auth: o.Auth, policy: o.Policy, log: o.Logger, countFn: o.Count,
		srv: grpc.NewServer(grpc.MaxRecvMsgSize(o.MaxMessage))}
	// The generated descriptor, but for the handler: the generated one
	// decodes before any interceptor could authenticate, and reports a
	// message that does not decode as codes.Internal.
	g.srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: coltrace.TraceService_ServiceDesc.ServiceName,
		HandlerType: (*coltrace.TraceServiceServer)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Export", Handler: grpcExportHandler}},
		Metadata:    coltrace.TraceService_ServiceDesc.Metadata,
	}, g)
	return g, nil
}

// Serve answers gRPC on ln until Stop. It returns nil after Stop.
func (g *GRPCServer) Serve(ln net.Listener) error {
	if err := g.srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("tracing grpc: serve: %w", err)
	}
	return nil
}

// Stop stops taking calls and waits for those in flight until ctx ends,
// then cuts them off.
func (g *GRPCServer) Stop(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		g.srv.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		g.srv.Stop()
		<-done
	}
}

// grpcExportHandler authenticates and authorizes the call, then decodes its
// message and hands it to Export.
func grpcExportHandler(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	g := srv.(*GRPCServer)
	p, err := g.authorize(ctx)
	if err != nil {
		g.count(p, "denied")
		return nil, err
	}
	req := new(coltrace.ExportTraceServiceRequest)
	if err := dec(req); err != nil {
		g.count(p, "failure")
		return nil, status.Error(codes.InvalidArgument, "the message is not an OTLP ExportTraceServiceRequest")
	}
	resp, err := g.Export(ctx, req)
	switch {
	case err != nil:
		g.count(p, "failure")
	case resp.GetPartialSuccess().GetRejectedSpans() > 0:
		g.count(p, "partial")
	default:
		g.count(p, "success")
	}
	return resp, err
}

// count counts an export of an authenticated caller (Options.Count); an
// unauthenticated call names no account and is only logged by gRPC.
func (g *GRPCServer) count(p *access.Principal, outcome string) {
	if g.countFn != nil && p != nil {
		g.countFn(p.User, outcome)
	}
}

// authorize maps the access errors to gRPC codes: Unauthenticated,
// PermissionDenied, or Internal (logged) when the store fails.
func (g *GRPCServer) authorize(ctx context.Context) (*access.Principal, error) {
	cred := access.Credentials{}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			cred.Authorization = v[0]
		}
		if v := md.Get("user-agent"); len(v) > 0 {
			cred.UserAgent = v[0]
		}
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		cred.PeerAddr = p.Addr.String()
		if host, _, err := net.SplitHostPort(cred.PeerAddr); err == nil {
			cred.PeerAddr = host
		}
	}
	if strings.TrimSpace(cred.Authorization) == "" {
		return nil, status.Error(codes.Unauthenticated, "an authorization: Bearer <token> metadata entry is required")
	}
	p, err := g.auth.Authenticate(ctx, cred)
	if err == nil {
		err = g.policy.Authorize(p, access.ActionIngest, access.Res(access.ConsoleIngest))
	}
	return p, g.status(err)
}

// status turns an error of the platform contract into a gRPC status.
func (g *GRPCServer) status(err error) error {
	if err == nil {
		return nil
	}
	msg := delivery.ErrorMessage(err)
	switch delivery.ErrorCode(err) {
	case delivery.EUNAUTHORIZED:
		return status.Error(codes.Unauthenticated, msg)
	case delivery.EFORBIDDEN:
		return status.Error(codes.PermissionDenied, msg)
	case delivery.EINVALID:
		return status.Error(codes.InvalidArgument, msg)
	}
	g.log.Error("otlp grpc trace export failed", "err", err)
	return status.Error(codes.Internal, "the console could not store the spans; try again")
}

// Export stores the spans of an authorized, decoded request. It answers a
// partial success when spans were refused.
func (g *GRPCServer) Export(ctx context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	res, err := g.recv.Ingest(ctx, req)
	if err != nil {
		return nil, g.status(err)
	}
	resp := &coltrace.ExportTraceServiceResponse{}
	if res.Rejected > 0 {
		resp.PartialSuccess = &coltrace.ExportTracePartialSuccess{RejectedSpans: int64(res.Rejected),
			ErrorMessage: "spans refused: they could not be read as spans"}
	}
	return resp, nil
}
