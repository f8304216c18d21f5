package imageref

import (
	"errors"
	"fmt"
	"strings"
)

// The reference grammar of github.com/distribution/reference (v0.6.0, regexp.go), the one
// Docker and containerd parse images with, written as plain functions: that package
// compiles a dozen regular expressions, and go-digest more, when it is initialised — about
// 0.9 ms and 4,400 allocations at every cold start, before any event. The functions accept
// exactly the strings the expressions accept; imageref's tests hold them to the package
// itself (a differential fuzz target and a generated table of edge cases), and the package
// stays the judge of what a valid image is.
//
//	reference      := name [ ":" tag ] [ "@" digest ]
//	name           := [ domain "/" ] remote-name
//	domain         := host [ ":" port-number ]
//	host           := domain-name | "[" [a-fA-F0-9:]+ "]"
//	domain-name    := component ( "." component )*
//	component      := [a-zA-Z0-9] | [a-zA-Z0-9] [a-zA-Z0-9-]* [a-zA-Z0-9]
//	remote-name    := path-component ( "/" path-component )*
//	path-component := [a-z0-9]+ ( separator [a-z0-9]+ )*
//	separator      := "." | "_" | "__" | "-"+
//	tag            := [\w] [\w.-]{0,127}
//	digest         := algorithm ":" [0-9a-fA-F]{32,}
//	algorithm      := [A-Za-z][A-Za-z0-9]* ( [-_+.] [A-Za-z][A-Za-z0-9]* )*

// The grammar's errors, worded as distribution/reference and go-digest word them.
var (
	errReferenceFormat = errors.New("invalid reference format")
	errNameUppercase   = errors.New("repository name must be lowercase")
	errNameTooLong     = fmt.Errorf("repository name must not be more than %d characters", maxPath)
	errDigestFormat    = errors.New("invalid checksum digest format")
	errDigestLength    = errors.New("invalid checksum digest length")
	errDigestAlgorithm = errors.New("unsupported digest algorithm")
)

// maxPath is the longest repository path (distribution/reference's RepositoryNameTotalLengthMax).
const maxPath = 255

// digestLengths are the algorithms go-digest knows and the hex length of each.
var digestLengths = map[string]int{"sha256": 64, "sha384": 96, "sha512": 128}

// parseNormalized is distribution/reference's ParseNormalizedNamed: Docker Hub short names
// are completed ("nginx" is docker.io/library/nginx), then the whole reference is parsed.
// host is "" when the first component is neither a host nor taken for docker.io.
func parseNormalized(s string) (host, path, tag, digest string, err error) {
	if len(s) == 64 && all(s, isLowerHex) {
		return "", "", "", "", errors.New("cannot specify 64-byte hexadecimal strings as a repository name")
	}
	domain, remainder := splitDockerDomain(s)
	remote := remainder
	if i := strings.IndexByte(remainder, ':'); i >= 0 {
		remote = remainder[:i]
	}
	if strings.ToLower(remote) != remote {
		return "", "", "", "", fmt.Errorf("%w: repository name (%s) must be lowercase", errReferenceFormat, remote)
	}
	return parseReference(domain + "/" + remainder)
}

// splitDockerDomain is distribution/reference's: it decides whether the first component
// names a registry, the way the Docker CLI does.
func splitDockerDomain(name string) (domain, remote string) {
	first, rest, ok := strings.Cut(name, "/")
	switch {
	case !ok:
		return "docker.io", "library/" + name
	case first == "localhost":
		domain, remote = first, rest
	case first == "index.docker.io":
		domain, remote = "docker.io", rest
	case strings.ContainsAny(first, ".:"), strings.ToLower(first) != first:
		domain, remote = first, rest
	default:
		domain, remote = "docker.io", name
	}
	if domain == "docker.io" && !strings.Contains(remote, "/") {
		remote = "library/" + remote
	}
	return domain, remote
}

// parseReference is distribution/reference's Parse.
func parseReference(s string) (host, path, tag, digest string, err error) {
	host, path, tag, digest, ok := split(s)
	switch {
	case !ok && s == "":
		return "", "", "", "", errors.New("repository name must have at least one component")
	case !ok:
		if _, _, _, _, lower := split(strings.ToLower(s)); lower {
			return "", "", "", "", errNameUppercase
		}
		return "", "", "", "", errReferenceFormat
	case len(path) > maxPath:
		return "", "", "", "", errNameTooLong
	}
	if digest != "" {
		if err := validateDigest(digest); err != nil {
			return "", "", "", "", err
		}
	}
	return host, path, tag, digest, nil
}

// split matches s against the whole grammar and returns its parts. The parts are found
// without search: "@" appears only before the digest; a tag's ":" is the only one after the
// name's last "/" (a port's comes before it); a domain is the first component, taken when it
// can be one and the rest is a remote name, as the expression's greedy optional group takes it.
func split(s string) (host, path, tag, digest string, ok bool) {
	nameTag := s
	if at := strings.IndexByte(s, '@'); at >= 0 {
		nameTag, digest = s[:at], s[at+1:]
		if !isDigest(digest) {
			return "", "", "", "", false
		}
	}
	name := nameTag
	if c := strings.IndexByte(nameTag[strings.LastIndexByte(nameTag, '/')+1:], ':'); c >= 0 {
		c += strings.LastIndexByte(nameTag, '/') + 1
		name, tag = nameTag[:c], nameTag[c+1:]
		if !isTag(tag) {
			return "", "", "", "", false
		}
	}
	if first, rest, found := strings.Cut(name, "/"); found && isDomain(first) && isRemoteName(rest) {
		return first, rest, tag, digest, true
	}
	if isRemoteName(name) {
		return "", name, tag, digest, true
	}
	return "", "", "", "", false
}

// isDomain is host [ ":" port ].
func isDomain(s string) bool {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 2 || !all(s[1:end], func(c byte) bool { return isHex(c) || c == ':' }) {
			return false
		}
		host, port = "", s[end+1:]
	} else if i := strings.IndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i:]
	}
	if port != "" && (port[0] != ':' || len(port) < 2 || !all(port[1:], isDigit)) {
		return false
	}
	if host == "" {
		return strings.HasPrefix(s, "[")
	}
	for c := range strings.SplitSeq(host, ".") {
		if c == "" || !all(c, func(b byte) bool { return isAlnum(b) || b == '-' }) || c[0] == '-' || c[len(c)-1] == '-' {
			return false
		}
	}
	return true
}

// isRemoteName is path-component ( "/" path-component )*.
func isRemoteName(s string) bool {
	for c := range strings.SplitSeq(s, "/") {
		if !isPathComponent(c) {
			return false
		}
	}
	return true
}

// isPathComponent is runs of [a-z0-9] joined by ".", "_", "__" or one or more "-".
func isPathComponent(s string) bool {
	for i := 0; ; {
		start := i
		for i < len(s) && (isDigit(s[i]) || 'a' <= s[i] && s[i] <= 'z') {
			i++
		}
		if i == start {
			return false // empty, a separator first or last, or another byte
		}
		if i == len(s) {
			return true
		}
		sep := i
		for i < len(s) && (s[i] == '.' || s[i] == '_' || s[i] == '-') {
			i++
		}
		switch sep := s[sep:i]; {
		case sep == ".", sep == "_", sep == "__", sep != "" && strings.Trim(sep, "-") == "":
		default:
			return false // another byte, or a mixed or tripled separator
		}
	}
}

// isTag is [\w][\w.-]{0,127}.
func isTag(s string) bool {
	return len(s) >= 1 && len(s) <= 128 && isWord(s[0]) && all(s, func(c byte) bool { return isWord(c) || c == '.' || c == '-' })
}

// isDigest is algorithm ":" hex{32,}.
func isDigest(s string) bool {
	alg, hex, ok := strings.Cut(s, ":")
	if !ok || len(hex) < 32 || !all(hex, isHex) {
		return false
	}
	for i := 0; ; {
		if i >= len(alg) || !isLetter(alg[i]) {
			return false
		}
		for i++; i < len(alg) && isAlnum(alg[i]); i++ {
		}
		if i == len(alg) {
			return true
		}
		if !strings.ContainsRune("-_+.", rune(alg[i])) {
			return false
		}
		i++
	}
}

// validateDigest is go-digest's Validate, for a string isDigest accepts.
func validateDigest(d string) error {
	alg, hex, _ := strings.Cut(d, ":")
	n, ok := digestLengths[alg]
	switch {
	case !ok:
		return errDigestAlgorithm
	case len(hex) != n:
		return errDigestLength
	case !all(hex, isLowerHex):
		return errDigestFormat
	}
	return nil
}

func all(s string, f func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !f(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool    { return '0' <= c && c <= '9' }
func isLetter(c byte) bool   { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool    { return isDigit(c) || isLetter(c) }
func isWord(c byte) bool     { return isAlnum(c) || c == '_' }
func isHex(c byte) bool      { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
func isLowerHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' }
