// Package chat renders a conversation into the prompt text a chat model was
// trained on, without a Jinja interpreter.
//
// A GGUF file carries its template as Jinja source in
// tokenizer.chat_template. Rather than evaluating arbitrary Jinja, Detect
// recognises the template family by distinctive markers and Render
// reproduces, in Go, the text the family's reference template produces for
// plain text messages (no tools, no images). A config override can pick a
// family by name with ByName.
//
// # Families
//
//   - llama2: Llama-2-chat. "[INST] … [/INST]" turns; a leading system
//     message is folded into the first user turn between "<<SYS>>\n" and
//     "\n<</SYS>>\n\n"; contents are stripped of surrounding whitespace;
//     each assistant turn is " answer </s>" and each later user turn
//     starts with "<s>". Roles must alternate user/assistant after the
//     optional system message (an error otherwise, as the reference
//     template raises). The template has no generation prompt: a
//     conversation ending in a user turn already ends in " [/INST]".
//   - chatml: ChatML as used by Qwen: "<|im_start|>role\ncontent<|im_end|>\n"
//     per message and "<|im_start|>assistant\n" as the generation prompt.
//     When the template inserts a default system prompt (Qwen2 and Qwen2.5
//     do), Detect extracts its text into DefaultSystem and Render inserts
//     it when the conversation has no system message.
//   - glm4: GLM-4 chat (chatglm/glm4 architectures): "[gMASK]<sop>" then
//     "<|role|>\ncontent" per message and "<|assistant|>" as the generation
//     prompt (followed by "\n" when the detected template writes one,
//     see GenNewline). Roles are free-form, e.g. "observation".
//   - chatglm3: ChatGLM3-6B: "[gMASK]sop" then "<|role|>\n content" per
//     message (note the space) and "<|assistant|>".
//   - llama3: Llama-3 instruct: per message the header
//     "<|start_header_id|>role<|end_header_id|>\n\n", the trimmed content
//     and "<|eot_id|>"; the assistant header is the generation prompt.
//   - llama3.1: as llama3, but, like the Llama-3.1 reference template, the
//     first block is always a system block that starts with
//     "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n".
//   - plain: the completion fallback for models without a template (base
//     models such as the bundled demo model). A conversation that is a
//     single user message renders as that message's text unchanged, so a
//     base model simply continues it. Anything else renders one line per
//     message, "System: …", "User: …", "Assistant: …" (the role name with
//     its first letter upper-cased), and "Assistant:" as the generation
//     prompt.
//
// # Special tokens and BOS
//
// Rendered text contains special-token text such as "<|im_start|>" or
// "</s>" verbatim; the tokenizer must be run with special-token parsing so
// that such text becomes the special token ids. Where a reference template
// starts with the BOS token text ("<s>" for Llama-2, "<|begin_of_text|>" for
// Llama-3), Render leaves that leading BOS out: the tokenizer adds BOS
// itself (tokenizer.ggml.add_bos_token), and emitting it too would double
// it. BOS text inside the conversation (Llama-2's "<s>" before each later
// user turn) is kept. GLM's "[gMASK]<sop>" prefix is part of the template
// text, not a BOS, and is always emitted.
//
// See docs/CHAT_TEMPLATES.md for worked examples of each family.
package chat
