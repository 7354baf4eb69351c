using System.Text;
using Microsoft.ML.Tokenizers;

namespace BlockTransformer.Text;

/// <summary>The file's Unicode normalizer (NFC for GPT-NeoX), or a sequence of forms applied in order.</summary>
internal sealed class UnicodeNormalizer : Normalizer
{
    private readonly NormalizationForm[] forms;

    public UnicodeNormalizer(IReadOnlyList<NormalizationForm> forms, string source)
    {
        this.forms = forms.ToArray();
        foreach (var form in this.forms)
        {
            // With invariant globalization .NET has no normalization data and returns text unchanged.
            if ("e\u0301\uFB01".Normalize(form) == "e\u0301\uFB01")
            {
                throw new TokenizerException($"{source}: its normalizer needs Unicode normalization ({form}), which this process lacks: it runs with invariant globalization (InvariantGlobalization or DOTNET_SYSTEM_GLOBALIZATION_INVARIANT), where .NET normalizes nothing. Build the application with <InvariantGlobalization>false</InvariantGlobalization> and ICU installed.");
            }
        }
    }

    public override string Normalize(string original)
    {
        foreach (var form in forms)
        {
            original = original.Normalize(form);
        }

        return original;
    }

    public override string Normalize(ReadOnlySpan<char> original) => Normalize(original.ToString());
}
