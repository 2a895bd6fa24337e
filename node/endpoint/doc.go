// Package endpoint is the agent's authenticated HTTPS endpoint for what the
// API server cannot answer from the store: a container's logs, and commands
// run in a container. The API server serves Kubernetes' pods/log and
// pods/exec subresources by proxying them here with the agent's endpoint
// token, so clients (orchctl, kubectl, client-go) see Kubernetes' wire
// format end to end.
//
// Every request needs "Authorization: Bearer <Config.Token>"; anything else
// is 401. Three routes, under the pod's namespace and name (and container):
//
//	GET /containerLogs/{namespace}/{pod}/{container}
//	    ?follow &tailLines &previous &timestamps &sinceSeconds|sinceTime &limitBytes
//	GET /exec/{namespace}/{pod}/{container}
//	    ?command=PROGRAM&command=ARG... &stdin &stdout &stderr &tty
//	GET /portForward/{namespace}/{pod}?port=PORT[,PORT...]
//
// The endpoint knows nothing of pods: Config.Resolve maps a pod's container
// to the engine's container, and Config.Runtime reads its logs and runs
// commands in it. Errors before a stream starts are answered as a
// metav1.Status with the HTTP code (400 bad query, 404 no such container,
// 409 container not running, 500 engine failure), which client-go turns
// into an API error with the message, and which the API server can pass
// on unchanged.
//
// Logs are text/plain, stdout and stderr interleaved as the engine stores
// them; with follow every chunk is flushed as it comes, and the response
// ends when the container stops or the caller goes away.
//
// Exec is a WebSocket speaking Kubernetes' channel protocol, subprotocol
// v5.channel.k8s.io (preferred) or v4.channel.k8s.io, as client-go's
// remotecommand.NewWebSocketExecutor expects. Every binary message starts
// with a channel byte: 0 stdin (client to endpoint), 1 stdout, 2 stderr,
// 3 error, 4 resize (client to endpoint: JSON {"Width":W,"Height":H}), and
// in v5 255 followed by a channel number, the client closing that channel
// (255 0 ends the command's stdin). When the command has exited, the
// endpoint sends one message on channel 3, a metav1.Status as JSON:
//
//	{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success"}
//	{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
//	 "message":"command terminated with non-zero exit code 3","reason":"NonZeroExitCode",
//	 "details":{"causes":[{"reason":"ExitCode","message":"3"}]},"code":500}
//	{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
//	 "message":"<why the command could not run>","reason":"InternalError","code":500}
//
// (reason NotFound and code 404 when the container vanished meanwhile),
// then a WebSocket close with code 1000 (normal closure), which client-go
// needs to end its streams cleanly; it then returns nil, an
// exec.CodeExitError with the code, or an error with the message. A client
// that goes away ends the session: the command loses its stdin and the
// runtime call is cancelled.
//
// Port forwarding is a WebSocket too, the protocol the kubelet serves:
// subprotocol v5.channel.k8s.io, v4.channel.k8s.io, portforward.k8s.io or
// none. Each requested port i has a data channel 2*i and an error channel
// 2*i+1, and the endpoint starts both with the port as two little-endian
// bytes. Config.PodAddress says where the pod is; the endpoint connects to
// each port there and copies the data channel both ways. A connection that
// cannot be made is reported as text on the port's error channel. In v5
// the client closes its sending side with 255 and the data channel, which
// half-closes the pod connection. Once every port's pod side has ended,
// the endpoint closes the WebSocket normally; a client that goes away
// closes the pod connections.
package endpoint
