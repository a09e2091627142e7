/** The OpenAI chat-completions wire format's objects, as far as azscale reads and writes them. */

/** One `chat.completion.chunk` object (the fields azscale reads). */
export interface OpenAIChatChunk {
  /** The response id (the same in every chunk of one answer). */
  id?: string;
  /** The model that answered. */
  model?: string;
  /** Unix time in seconds when the answer was created. */
  created?: number;
  /** The choices' deltas (azscale reads only the first choice). */
  choices?: {
    /** Position of the choice. */
    index?: number;
    /** What this chunk adds to the choice. */
    delta?: {
      /** A piece of the answer text. */
      content?: string | null;
      /** A piece of the reasoning text (vLLM, DeepSeek and similar servers). */
      reasoning_content?: string | null;
      /** Pieces of tool calls; the pieces of one call share its `index`. */
      tool_calls?: {
        /** Position of the tool call the piece belongs to. */
        index?: number;
        /** The provider's call id (in the call's first piece). */
        id?: string;
        /** Pieces of the called function. */
        function?: {
          /** A piece of the function name. */
          name?: string;
          /** A piece of the JSON-encoded arguments. */
          arguments?: string;
        };
      }[];
    };
    /** The provider's finish reason (e.g. `tool_calls`), in the choice's last chunk; else `null`. */
    finish_reason?: string | null;
  }[];
  /** Token usage, in the last chunk when `stream_options.include_usage` is set. */
  usage?: OpenAIUsage | null;
  [field: string]: unknown;
}

/** OpenAI's usage object. */
export interface OpenAIUsage {
  /** Prompt tokens (cached ones included). */
  prompt_tokens?: number;
  /** Completion tokens (reasoning ones included). */
  completion_tokens?: number;
  /** Breakdown of the prompt tokens. */
  prompt_tokens_details?: {
    /** Prompt tokens served from the provider's prompt cache. */
    cached_tokens?: number;
  } | null;
  /** Breakdown of the completion tokens. */
  completion_tokens_details?: {
    /** Completion tokens spent on reasoning. */
    reasoning_tokens?: number;
  } | null;
}

/** A whole `chat.completion` object (the fields azscale reads and writes). */
export interface OpenAIChatCompletion {
  /** The response id. */
  id?: string;
  /** The object type, `chat.completion`. */
  object?: string;
  /** Unix time in seconds when the answer was created. */
  created?: number;
  /** The model that answered. */
  model?: string;
  /** The answer's choices (azscale reads only the first). */
  choices?: {
    /** Position of the choice. */
    index?: number;
    /** The answer message. */
    message?: {
      /** The author's role, `assistant`. */
      role?: string;
      /** The answer text; `null` when the model only called tools. */
      content?: string | null;
      /** The reasoning text (vLLM, DeepSeek and similar servers). */
      reasoning_content?: string | null;
      /** The tool calls the model asked for, in order. */
      tool_calls?: {
        /** The provider's call id. */
        id: string;
        /** The tool kind, `function`. */
        type?: string;
        /** The called function. */
        function: {
          /** Function name. */
          name: string;
          /** JSON-encoded arguments. */
          arguments: string;
        };
      }[];
    };
    /** The provider's finish reason (e.g. `stop`, `tool_calls`). */
    finish_reason?: string | null;
  }[];
  /** Token usage of the call. */
  usage?: OpenAIUsage | null;
  [field: string]: unknown;
}
