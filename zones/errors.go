package zones

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Pos is a place in a configuration file.
type Pos struct {
	File string
	Line int // 1-based; 0 when unknown
	Col  int // 1-based; 0 when unknown
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is one problem found in a configuration file.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// ErrorList is every problem found in one load, in file order. Loading
// reports all of them at once so an operator fixes a file in one pass.
type ErrorList []*Error

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap lets errors.As find an individual *Error.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// ErrInvalid is wrapped by every error that rejects a configuration.
var ErrInvalid = errors.New("invalid configuration")

// errs collects problems while a file is validated.
type errs struct {
	list ErrorList
}

func (c *errs) add(p Pos, format string, args ...any) {
	c.list = append(c.list, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

func (c *errs) merge(l ErrorList) { c.list = append(c.list, l...) }

func (c *errs) err() error {
	if len(c.list) == 0 {
		return nil
	}
	sort.SliceStable(c.list, func(i, j int) bool {
		a, b := c.list[i].Pos, c.list[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return fmt.Errorf("%w:\n%w", ErrInvalid, c.list)
}
