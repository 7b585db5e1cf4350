package federation

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// TokenPrefix starts every invitation token, so a pasted token is easy to
// recognise and a truncated one fails loudly.
const TokenPrefix = "mimfed1:"

// Token is what `mimnode federation invite` prints and `join` reads: the
// federation's whole document chain (so the joiner verifies it back to the
// genesis document, whose CID is the federation ID) and addresses to reach
// members now. A token for a change that still lacks admin signatures (k of
// n) carries it as Proposal.
type Token struct {
	Chain     []*Document `json:"chain"`
	Proposal  *Document   `json:"proposal,omitempty"`
	Addresses []string    `json:"addresses,omitempty"`
}

// EncodeToken renders t as one line of text.
func EncodeToken(t Token) (string, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// DecodeToken parses a token. It checks the form, not the signatures.
func DecodeToken(s string) (Token, error) {
	var t Token
	s = strings.TrimSpace(s)
	body, ok := strings.CutPrefix(s, TokenPrefix)
	if !ok {
		return t, fmt.Errorf("%w: token does not start with %q", ErrMalformed, TokenPrefix)
	}
	if len(body) > 4*maxDocBytes {
		return t, fmt.Errorf("%w: token too long", ErrMalformed)
	}
	b, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return t, fmt.Errorf("%w: token is not valid base64url (truncated when copied?): %v", ErrMalformed, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return t, fmt.Errorf("%w: token is incomplete (cut short when copied?): copy the whole line 'mimnode federation invite' printed", ErrMalformed)
	} else if err != nil {
		return t, fmt.Errorf("%w: token: %v", ErrMalformed, err)
	}
	if len(t.Chain) == 0 {
		return t, fmt.Errorf("%w: token has no documents", ErrMalformed)
	}
	for i, d := range t.Chain {
		if d == nil {
			return t, fmt.Errorf("%w: token document %d is null", ErrMalformed, i)
		}
	}
	return t, nil
}
