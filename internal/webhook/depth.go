package webhook

import "bytes"

// MaxDepth is the deepest nesting of arrays and objects a payload may have.
// GitHub's payloads nest about ten levels; the JSON validator recurses once
// per level, and a body of 25 MB of "[" would overflow the stack.
const MaxDepth = 100

// nestedWithin reports whether no array or object in b is nested deeper
// than limit, without recursion: brackets inside strings do not count. It
// does not validate b; malformed input it accepts is left to the validator.
func nestedWithin(b []byte, limit int) bool {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			end := stringEnd(b, i)
			if end < 0 {
				return true // unterminated: malformed, not deep
			}
			i = end
		case '[', '{':
			if depth++; depth > limit {
				return false
			}
		case ']', '}':
			depth--
		}
	}
	return true
}

// stringEnd returns the index of the quote that closes the string opening
// at b[open], or -1. A quote is escaped when an odd number of backslashes
// precede it; each run of backslashes is counted once, so the scan stays
// linear.
func stringEnd(b []byte, open int) int {
	for i := open + 1; i < len(b); i++ {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return -1
		}
		i += q
		slashes := 0
		for j := i - 1; j > open && b[j] == '\\'; j-- {
			slashes++
		}
		if slashes%2 == 0 {
			return i
		}
	}
	return -1
}
