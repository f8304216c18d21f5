package emulator

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The AWS query protocol (STS, SNS): a form-encoded POST whose Action parameter names the
// operation, answered in XML.

// XML namespaces of the query services' answers.
const (
	stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
	snsNamespace = "http://sns.amazonaws.com/doc/2010-03-31/"
)

type queryOperation struct {
	service, namespace string
	fn                 opFunc
}

// queryOperations are the served query-protocol actions; their names are unique across STS and
// SNS, so the Action alone picks the service.
var queryOperations = map[string]queryOperation{}

func init() {
	for op, fn := range stsOperations {
		queryOperations[op] = queryOperation{"sts", stsNamespace, fn}
	}
	for op, fn := range snsOperations {
		queryOperations[op] = queryOperation{"sns", snsNamespace, fn}
	}
}

// isForm reports whether a request uses the query protocol.
func isForm(r *http.Request) bool {
	if r.Method == http.MethodGet {
		return r.URL.Query().Get("Action") != ""
	}
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

func (e *Emulator) serveQuery(w http.ResponseWriter, r *http.Request, requestID string) {
	var body []byte
	if r.Method == http.MethodGet {
		body = []byte(r.URL.RawQuery)
	} else {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
		if err != nil || len(body) > maxRequestBody {
			queryProtocol{namespace: stsNamespace, requestID: requestID}.writeError(w, clientError("MalformedQueryString", "cannot read request body"))
			return
		}
	}
	if body == nil {
		body = []byte{}
	}
	action := formValue(body, "Action")
	qo, ok := queryOperations[action]
	if !ok {
		_, _, service := credentialScope(r)
		ns := stsNamespace
		if service == "sns" {
			ns = snsNamespace
		}
		queryProtocol{namespace: ns, requestID: requestID}.writeError(w, clientError("InvalidAction", "Could not find operation %s for version %s (the emulator serves STS %s and SNS %s)", action, formValue(body, "Version"), actionNames(stsOperations), actionNames(snsOperations)))
		return
	}
	started := e.now()
	errCode := e.serve(w, r, action, qo.fn, queryProtocol{namespace: qo.namespace, requestID: requestID}, body)
	caller, _ := e.identify(r)
	e.recordCall(Call{Service: qo.service, Op: action, Time: started, Mutating: isMutating(action), Error: errCode, Account: caller.account})
	e.deliverEvents()
}

func formValue(body []byte, key string) string {
	for _, kv := range strings.Split(string(body), "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k == key {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
			return v
		}
	}
	return ""
}

func actionNames(ops map[string]opFunc) string {
	names := make([]string, 0, len(ops))
	for op := range ops {
		names = append(names, op)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// queryProtocol answers in XML: <ActionResponse><ActionResult>…</ActionResult><ResponseMetadata>.
type queryProtocol struct{ namespace, requestID string }

// queryCodes are the query services' names for the errors the emulator's hooks raise.
var queryCodes = map[string]string{
	"ThrottlingException":    "Throttling",
	"ServerException":        "InternalFailure",
	"SerializationException": "MalformedQueryString",
	"ExpiredTokenException":  "ExpiredToken",
}

func (p queryProtocol) writeError(w http.ResponseWriter, ae *apiError) string {
	code := ae.Code
	if c, ok := queryCodes[code]; ok {
		code = c
	}
	kind := "Sender"
	if ae.Status >= 500 {
		kind = "Receiver"
	}
	var b bytes.Buffer
	b.WriteString(`<ErrorResponse xmlns="` + p.namespace + `"><Error><Type>` + kind + `</Type><Code>`)
	_ = xml.EscapeText(&b, []byte(code))
	b.WriteString(`</Code><Message>`)
	_ = xml.EscapeText(&b, []byte(ae.Message))
	b.WriteString(`</Message></Error><RequestId>` + p.requestID + `</RequestId></ErrorResponse>`)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(ae.Status)
	_, _ = w.Write(b.Bytes())
	return code
}

// writeResult writes out, an XML element <ActionResult> (give the struct an XMLName), inside the
// action's response envelope.
func (p queryProtocol) writeResult(w http.ResponseWriter, op string, out any) string {
	inner, err := xml.Marshal(out)
	if err != nil {
		return p.writeError(w, serverError("encode response: %v", err))
	}
	var b bytes.Buffer
	b.WriteString(`<` + op + `Response xmlns="` + p.namespace + `">`)
	b.Write(inner)
	b.WriteString(`<ResponseMetadata><RequestId>` + p.requestID + `</RequestId></ResponseMetadata></` + op + `Response>`)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
	return ""
}

// queryError is an error of a query service: code as the service names it, 400 unless status says.
func queryError(status int, code, format string, args ...any) *apiError {
	ae := clientError(code, format, args...)
	if status != 0 {
		ae.Status = status
	}
	return ae
}
