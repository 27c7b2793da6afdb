package pipeline

// event is the part of a payload the handlers read.
type event struct {
	Action     string `json:"action"`
	Repository struct {
		FullName string `json:"full_name"`
		Name     string `json:"name"`
		Owner    struct {
			Login string `json:"login"`
		} `json:"owner"`
	} `json:"repository"`
	Installation struct {
		ID int64 `json:"id"`
	} `json:"installation"`
	Sender      user                   `json:"sender"`
	Issue       *thread                `json:"issue"`
	PullRequest *pull                  `json:"pull_request"`
	Reviewer    *user                  `json:"requested_reviewer"`
	Team        *struct{ Name string } `json:"requested_team"`
	WorkflowRun *struct {
		ID           int64  `json:"id"`
		Name         string `json:"name"`
		HeadBranch   string `json:"head_branch"`
		HeadSHA      string `json:"head_sha"`
		HTMLURL      string `json:"html_url"`
		Conclusion   string `json:"conclusion"`
		UpdatedAt    string `json:"updated_at"`
		PullRequests []struct {
			Number int `json:"number"`
		} `json:"pull_requests"`
	} `json:"workflow_run"`
}

type user struct {
	Login string `json:"login"`
	Type  string `json:"type"`
}

type thread struct {
	Number    int     `json:"number"`
	UpdatedAt string  `json:"updated_at"`
	Title     string  `json:"title"`
	Body      *string `json:"body"`
	User      user    `json:"user"`
	State     string  `json:"state"`
	Locked    bool    `json:"locked"`
	// Association is the author's relation to the repository (OWNER,
	// MEMBER, COLLABORATOR, CONTRIBUTOR, FIRST_TIME_CONTRIBUTOR, NONE…).
	Association string `json:"author_association"`
	Labels      []struct {
		Name string `json:"name"`
	} `json:"labels"`
}

type pull struct {
	thread
	Draft bool `json:"draft"`
	Head  struct {
		Ref  string `json:"ref"`
		SHA  string `json:"sha"`
		Repo *struct {
			FullName string `json:"full_name"`
		} `json:"repo"` // null when the fork is gone
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
	} `json:"base"`
}

func (th *thread) body() string {
	if th.Body == nil {
		return ""
	}
	return *th.Body
}

func (th *thread) labelNames() []string {
	var out []string
	for _, l := range th.Labels {
		out = append(out, l.Name)
	}
	return out
}
