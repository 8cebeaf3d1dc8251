package chat

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// conversation exercises system handling, multi-turn and whitespace
// trimming (the second assistant turn has padding).
var conversation = []Message{
	{"system", "You are a helpful assistant"},
	{"user", "Hello"},
	{"assistant", "Hi there"},
	{"user", "Who are you"},
	{"assistant", "   I am an assistant   "},
	{"user", "Another question"},
}

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		name string
		tmpl Template
		msgs []Message
		gen  bool
		want string
	}{
		{
			name: "llama2",
			tmpl: Template{Family: Llama2},
			msgs: conversation,
			gen:  true,
			want: "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s>" +
				"<s>[INST] Who are you [/INST] I am an assistant </s><s>[INST] Another question [/INST]",
		},
		{
			name: "llama2 no system",
			tmpl: Template{Family: Llama2},
			msgs: []Message{{"user", " Hi "}},
			want: "[INST] Hi [/INST]",
		},
		{
			name: "chatml",
			tmpl: Template{Family: ChatML},
			msgs: conversation,
			gen:  true,
			want: "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n" +
				"<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n" +
				"<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n" +
				"<|im_start|>assistant\n",
		},
		{
			name: "chatml default system",
			tmpl: Template{Family: ChatML, DefaultSystem: "You are Qwen."},
			msgs: []Message{{"user", "Hi"}},
			gen:  true,
			want: "<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
		},
		{
			name: "chatml default system overridden",
			tmpl: Template{Family: ChatML, DefaultSystem: "You are Qwen."},
			msgs: []Message{{"system", "Be brief."}, {"user", "Hi"}},
			want: "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
		},
		{
			name: "glm4",
			tmpl: Template{Family: GLM4},
			msgs: conversation,
			gen:  true,
			want: "[gMASK]<sop><|system|>\nYou are a helpful assistant<|user|>\nHello<|assistant|>\nHi there" +
				"<|user|>\nWho are you<|assistant|>\n   I am an assistant   <|user|>\nAnother question<|assistant|>",
		},
		{
			name: "glm4 newline and observation",
			tmpl: Template{Family: GLM4, GenNewline: true},
			msgs: []Message{{"user", "Weather?"}, {"observation", "sunny"}},
			gen:  true,
			want: "[gMASK]<sop><|user|>\nWeather?<|observation|>\nsunny<|assistant|>\n",
		},
		{
			name: "chatglm3",
			tmpl: Template{Family: ChatGLM3},
			msgs: conversation,
			gen:  true,
			want: "[gMASK]sop<|system|>\n You are a helpful assistant<|user|>\n Hello<|assistant|>\n Hi there" +
				"<|user|>\n Who are you<|assistant|>\n    I am an assistant   <|user|>\n Another question<|assistant|>",
		},
		{
			name: "llama3",
			tmpl: Template{Family: Llama3},
			msgs: conversation,
			gen:  true,
			want: "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\n",
		},
		{
			name: "llama3.1",
			tmpl: Template{Family: Llama31},
			msgs: []Message{{"user", "Hi"}},
			gen:  true,
			want: "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
		},
		{
			name: "llama3.1 system",
			tmpl: Template{Family: Llama31},
			msgs: []Message{{"system", " Be brief. "}, {"user", "Hi"}},
			want: "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
		},
		{
			name: "plain single user message is the text itself",
			tmpl: Template{},
			msgs: []Message{{"user", "Once upon a time"}},
			gen:  true,
			want: "Once upon a time",
		},
		{
			name: "plain conversation",
			tmpl: Template{Family: Plain},
			msgs: conversation[:3],
			gen:  true,
			want: "System: You are a helpful assistant\nUser: Hello\nAssistant: Hi there\nAssistant:",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.tmpl.Render(tc.msgs, tc.gen)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestLlama2Alternation(t *testing.T) {
	for _, msgs := range [][]Message{
		{{"assistant", "Hi"}},
		{{"user", "a"}, {"user", "b"}},
		{{"system", "s"}, {"user", "a"}, {"system", "again"}},
		{{"user", "a"}, {"tool", "b"}},
	} {
		_, err := Template{Family: Llama2}.Render(msgs, true)
		if !errors.Is(err, ErrAlternation) {
			t.Errorf("%v: got error %v, want ErrAlternation", msgs, err)
		}
	}
}

func TestUnknownFamily(t *testing.T) {
	if _, err := (Template{Family: "nope"}).Render(nil, true); err == nil {
		t.Error("want an error for an unknown family")
	}
}

// Abbreviated template sources carrying each family's markers as they
// appear in GGUF files (Jinja escapes kept as written).
const (
	srcLlama2 = `{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% endif %}` +
		`{% for message in loop_messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}` +
		`{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}`
	srcQwen25 = `{%- if tools %}{{- '<|im_start|>system\n' }}{%- else %}{%- if messages[0]['role'] == 'system' %}` +
		`{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}{%- else %}` +
		`{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}` +
		`{%- endif %}{%- endif %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}`
	srcChatML = `{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}` +
		`{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`
	srcGLM4 = "[gMASK]<sop>{% for item in messages %}{% if item['content'] %}<|{{ item['role'] }}|>{{ item['metadata'] }}\n" +
		"{{ item['content'] }}{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
	srcGLM4NL = "[gMASK]<sop>{% for item in messages %}<|{{ item['role'] }}|>\n{{ item['content'] }}{% endfor %}" +
		"{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
	srcGLMEdge = "{% for item in messages %}{% if item['role'] == 'user' %}<|user|>\n{{ item['content'] }}" +
		"{% elif item['role'] == 'assistant' %}<|assistant|>\n{{ item['content'] }}{% endif %}{% endfor %}<|assistant|>"
	srcChatGLM3 = "{% for message in messages %}{% if loop.first %}[gMASK]sop<|{{ message['role'] }}|>\n {{ message['content'] }}" +
		"{% else %}<|{{ message['role'] }}|>\n {{ message['content'] }}{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
	srcLlama3 = `{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + ` +
		`'<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}`
	srcLlama31 = `{{- bos_token }}{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}{{- "Cutting Knowledge Date: December 2023\n" }}`
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want Template
	}{
		{"llama2", srcLlama2, Template{Family: Llama2}},
		{"qwen2.5", srcQwen25, Template{Family: ChatML, DefaultSystem: "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."}},
		{"chatml", srcChatML, Template{Family: ChatML}},
		{"glm4", srcGLM4, Template{Family: GLM4}},
		{"glm4 newline", srcGLM4NL, Template{Family: GLM4, GenNewline: true}},
		{"glm edge", srcGLMEdge, Template{Family: GLM4}},
		{"chatglm3", srcChatGLM3, Template{Family: ChatGLM3}},
		{"llama3", srcLlama3, Template{Family: Llama3}},
		{"llama3.1", srcLlama31, Template{Family: Llama31}},
		{"empty", "", Template{Family: Plain}},
		{"unknown", "{% for m in messages %}{{ m.content }}{% endfor %}", Template{Family: Plain}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Detect(tc.src); got != tc.want {
				t.Errorf("Detect = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestByName(t *testing.T) {
	for _, name := range []string{"plain", "llama2", "chatml", "glm4", "chatglm3", "llama3", "llama3.1"} {
		tmpl, ok := ByName(name)
		if !ok || tmpl.Name() != name {
			t.Errorf("ByName(%q) = %+v, %v", name, tmpl, ok)
		}
	}
	if tmpl, ok := ByName(" ChatGLM4 "); !ok || tmpl.Family != GLM4 {
		t.Errorf("alias chatglm4: %+v %v", tmpl, ok)
	}
	if tmpl, ok := ByName("Qwen"); !ok || tmpl.Family != ChatML {
		t.Errorf("alias qwen: %+v %v", tmpl, ok)
	}
	if _, ok := ByName("jinja"); ok {
		t.Error("unknown name accepted")
	}
	if (Template{}).Name() != "plain" {
		t.Error("zero Template is not plain")
	}
}

func TestStopStrings(t *testing.T) {
	tests := []struct {
		f    Family
		must string
	}{
		{ChatML, "<|im_end|>"},
		{GLM4, "<|user|>"},
		{GLM4, "<|observation|>"},
		{ChatGLM3, "<|user|>"},
		{Llama2, "</s>"},
		{Llama3, "<|eot_id|>"},
		{Llama31, "<|eot_id|>"},
		{Plain, "\nUser:"},
	}
	for _, tc := range tests {
		if got := (Template{Family: tc.f}).StopStrings(); !slices.Contains(got, tc.must) {
			t.Errorf("%s stop strings %q lack %q", tc.f, got, tc.must)
		}
	}
}

func ExampleTemplate_Render() {
	tmpl := Detect("{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'}}{% endfor %}")
	text, _ := tmpl.Render([]Message{{Role: "user", Content: "Hi"}}, true)
	fmt.Printf("%s %q\n", tmpl.Name(), text)
	// Output: chatml "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
}
