// A version's template: a text, or chat messages with their roles (a placeholder shows
// the name of the messages it stands for).
import type { PromptVersion } from './data';
import { isChat } from './data';

export function TemplateView({ template }: { template: PromptVersion['template'] }) {
  if (!isChat(template)) return <pre data-testid="template">{template}</pre>;
  return (
    <div data-testid="template">
      {template.map((m, i) => (
        <div key={i} className="card">
          {m.role === 'placeholder' ? (
            <span className="badge">placeholder: {m.content}</span>
          ) : (
            <>
              <span className="badge">{m.role}</span>
              <pre>{m.content}</pre>
            </>
          )}
        </div>
      ))}
    </div>
  );
}
