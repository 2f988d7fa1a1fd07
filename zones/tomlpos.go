package zones

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// positions maps a key path to where it is written in a TOML file, so that
// semantic errors found after decoding can still name file:line:col.
// BurntSushi/toml keeps key positions private, so we re-scan the text for key
// tokens and pair them, in document order, with MetaData.Keys().
//
// A path is written as the keys joined by "." with the element index of an
// array of tables in brackets: `pools.www.ttl`, `test[1].client`.
type positions struct {
	file string
	pos  map[string]Pos
}

// at returns the position of path, or of its nearest ancestor we know.
func (p *positions) at(path string) Pos {
	for {
		if q, ok := p.pos[path]; ok {
			return q
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return Pos{File: p.file}
		}
		path = path[:i]
	}
}

// keyToken is a key as written: its unquoted text and where it starts.
type keyToken struct {
	text      string
	line, col int
}

// scanKeys returns every token of data that stands where a key may stand:
// in a table header, or before "=" or "." outside strings and comments.
func scanKeys(data []byte) []keyToken {
	var out []keyToken
	line, col := 1, 1
	i := 0
	adv := func(n int) {
		for k := 0; k < n && i < len(data); k++ {
			if data[i] == '\n' {
				line++
				col = 1
			} else {
				col++
			}
			i++
		}
	}
	// nextNonSpace reports the next non-blank byte at or after j on the line.
	nextNonSpace := func(j int) byte {
		for j < len(data) && (data[j] == ' ' || data[j] == '\t') {
			j++
		}
		if j < len(data) {
			return data[j]
		}
		return 0
	}
	for i < len(data) {
		c := data[i]
		switch {
		case c == '#':
			for i < len(data) && data[i] != '\n' {
				adv(1)
			}
		case c == '"' || c == '\'':
			l, cl := line, col
			start := i
			n := stringLen(data[i:])
			raw := data[start : start+n]
			adv(n)
			if nx := nextNonSpace(i); nx == '=' || nx == '.' || nx == ']' {
				out = append(out, keyToken{text: unquoteKey(raw), line: l, col: cl})
			}
		case isBare(c):
			l, cl := line, col
			start := i
			for i < len(data) && isBare(data[i]) {
				adv(1)
			}
			if nx := nextNonSpace(i); nx == '=' || nx == '.' || nx == ']' {
				out = append(out, keyToken{text: string(data[start:i]), line: l, col: cl})
			}
		default:
			adv(1)
		}
	}
	return out
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// stringLen returns the length of the TOML string starting at s[0].
func stringLen(s []byte) int {
	q := s[0]
	if len(s) >= 3 && s[1] == q && s[2] == q { // multi-line
		end := bytes.Index(s[3:], []byte{q, q, q})
		if end < 0 {
			return len(s)
		}
		n := 3 + end + 3
		for n < len(s) && s[n] == q { // """a""""" allows up to two more quotes
			n++
		}
		return n
	}
	for j := 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if q == '"' {
				j++
			}
		case q, '\n':
			return j + 1
		}
	}
	return len(s)
}

func unquoteKey(raw []byte) string {
	if raw[0] == '\'' {
		return strings.Trim(string(raw), "'")
	}
	if s, err := strconv.Unquote(string(raw)); err == nil {
		return s
	}
	return strings.Trim(string(raw), `"`)
}

// locate pairs the decoded keys with their tokens.
func locate(file string, data []byte, md toml.MetaData) *positions {
	p := &positions{file: file, pos: make(map[string]Pos)}
	toks := scanKeys(data)
	t := 0
	arrayIndex := map[string]int{} // plain path → elements seen
	indexed := map[string]string{} // plain path → indexed path of its latest occurrence
	for _, k := range md.Keys() {
		last := k[len(k)-1]
		// Walk forward to the token naming this key; keys come in document order.
		found := -1
		for j := t; j < len(toks); j++ {
			if toks[j].text == last {
				found = j
				break
			}
		}
		var pos Pos
		if found >= 0 {
			pos = Pos{File: file, Line: toks[found].line, Col: toks[found].col}
			t = found + 1
		} else {
			pos = Pos{File: file}
		}
		// The indexed path extends the parent's, which came earlier in
		// Keys(); an array of tables counts its elements.
		plain := strings.Join(k, ".")
		path := last
		if len(k) > 1 {
			parent := plain[:len(plain)-len(last)-1]
			if ip, ok := indexed[parent]; ok {
				parent = ip
			} // else an implicit table, like "pools" in [pools.www]
			path = parent + "." + last
		}
		if md.Type(k...) == "ArrayHash" {
			arrayIndex[plain]++
			path += "[" + strconv.Itoa(arrayIndex[plain]-1) + "]"
		}
		indexed[plain] = path
		p.pos[path] = pos
	}
	return p
}

// decodeTOML decodes data into v, rejecting unknown keys. It returns the key
// positions for later semantic checks.
func decodeTOML(file string, data []byte, v any) (*positions, error) {
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(v)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, ErrorList{{Pos: offsetPos(file, data, pe.Position), Msg: pe.Message}}
		}
		return nil, ErrorList{{Pos: Pos{File: file}, Msg: err.Error()}}
	}
	p := locate(file, data, md)
	var c errs
	for _, k := range md.Undecoded() {
		c.add(p.at(indexedGuess(p, k)), "unknown key %q", k.String())
	}
	if len(c.list) > 0 {
		return p, c.list
	}
	return p, nil
}

// offsetPos converts a parse error's byte offset to line:col. The decoder's
// own Line and Col are off for some errors (an unclosed table header, a key
// at end of file); its Start offset is right.
func offsetPos(file string, data []byte, p toml.Position) Pos {
	if p.Start < 0 || p.Start > len(data) || (p.Start == 0 && p.Line > 1) {
		return Pos{File: file, Line: p.Line, Col: p.Col}
	}
	line := 1 + bytes.Count(data[:p.Start], []byte{'\n'})
	col := p.Start - bytes.LastIndexByte(data[:p.Start], '\n')
	return Pos{File: file, Line: line, Col: col}
}

// indexedGuess finds the recorded indexed path for an unindexed key, for
// unknown-key errors inside arrays of tables.
func indexedGuess(p *positions, k toml.Key) string {
	plain := strings.Join(k, ".")
	if _, ok := p.pos[plain]; ok {
		return plain
	}
	best := ""
	for path := range p.pos {
		if stripIndex(path) == plain && (best == "" || path > best) {
			best = path
		}
	}
	if best == "" {
		return plain
	}
	return best
}

func stripIndex(path string) string {
	var b strings.Builder
	skip := false
	for _, r := range path {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// DecodeFile decodes a TOML file into v (which holds the defaults),
// rejecting unknown keys. Errors carry file:line:col. Other packages use it
// for their own files (the node config) so every file Meridian reads
// reports errors the same way.
func DecodeFile(file string, v any) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if _, err := decodeTOML(file, data, v); err != nil {
		return fmt.Errorf("%w:\n%w", ErrInvalid, err)
	}
	return nil
}
