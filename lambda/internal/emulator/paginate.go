package emulator

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// Page tokens are opaque strings to clients, as AWS's are; inside they are base64 of a prefix and
// the offset of the next item. A token that does not decode, or points past the end of the list,
// is an InvalidParameterException, as AWS answers for a token it did not issue.
const tokenPrefix = "pinroll-emulator/v1/"

// paginate returns the page of items that starts at token and holds at most size items, and the
// token of the next page ("" on the last page).
func paginate[T any](items []T, token string, size int) ([]T, string, error) {
	start := 0
	if token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		n, convErr := strconv.Atoi(strings.TrimPrefix(string(raw), tokenPrefix))
		if err != nil || !strings.HasPrefix(string(raw), tokenPrefix) || convErr != nil || n < 0 || n > len(items) {
			return nil, "", invalidParameter("Invalid nextToken: it was not returned by a previous call of this operation")
		}
		start = n
	}
	end := min(start+size, len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + strconv.Itoa(end)))
	}
	return items[start:end], next, nil
}

// pageOut is a list response: the items under key, and nextToken when there is a next page.
func pageOut[T any](key string, items []T, next string) map[string]any {
	if items == nil {
		items = []T{}
	}
	out := map[string]any{key: items}
	if next != "" {
		out["nextToken"] = next
	}
	return out
}
