package grammar

import "github.com/open-autoglm/autoglm/internal/engine/runner"

// Constraint constrains a generation to g with vocabulary v. It implements
// runner.Constraint; masks are shared by the constraint's states.
type Constraint struct {
	m *masker
}

var _ runner.Constraint = (*Constraint)(nil)

// NewConstraint prepares g for generating with v.
func NewConstraint(g *Grammar, v *Vocab) *Constraint { return &Constraint{m: newMasker(g, v)} }

// NewState starts a generation.
func (c *Constraint) NewState() runner.ConstraintState { return c.Start() }

// Start starts a generation (the concrete type, for callers outside the runner).
func (c *Constraint) Start() *State { return &State{m: c.m, st: c.m.g.start()} }

// State follows one generation.
type State struct {
	m      *masker
	st     []frame
	broken bool // a token outside the mask was accepted: only the end is allowed
}

// Mask sets the logits of tokens that cannot continue valid output to -Inf.
func (s *State) Mask(logits []float32) {
	if s.broken {
		applyMask(logits, s.eogOnly())
		return
	}
	applyMask(logits, s.m.allowed(s.st))
}

func (s *State) eogOnly() []uint64 {
	bits := make([]uint64, (s.m.v.size+63)/64)
	for _, id := range s.m.v.eog {
		bits[id>>6] |= 1 << (id & 63)
	}
	return bits
}

// Allowed reports whether tok may come next.
func (s *State) Allowed(tok int32) bool {
	if tok < 0 || int(tok) >= s.m.v.size || s.broken {
		return false
	}
	bits := s.m.allowed(s.st)
	return bits[tok>>6]&(1<<(tok&63)) != 0
}

// Accept advances past tok.
func (s *State) Accept(tok int32) {
	if s.broken {
		return
	}
	v := s.m.v
	if tok < 0 || int(tok) >= v.size {
		s.broken = true
		return
	}
	for _, e := range v.eog {
		if e == tok {
			return
		}
	}
	p := v.piece(tok)
	for i := 0; i < len(p); i++ {
		if !s.m.g.feed(&s.st, p[i]) {
			s.broken = true
			return
		}
	}
}

// Done reports whether the output is complete.
func (s *State) Done() bool { return !s.broken && s.m.g.canEnd(s.st) }

// AcceptBytes feeds text (for tests and tool-call prefixes forced into the output).
func (s *State) AcceptBytes(text string) bool {
	for i := 0; i < len(text); i++ {
		if !s.m.g.feed(&s.st, text[i]) {
			s.broken = true
			return false
		}
	}
	return true
}
