//! The injection heuristics: families of patterns over [`normalize`](crate::normalize)d text
//! (lowercase, accents and homoglyphs folded, leetspeak and spacing undone), written once for
//! English, German, French, Spanish, Italian, Portuguese and Dutch. Verbs, qualifiers and
//! objects of the different languages share one alternation each, so mixed-language phrasings
//! ("ignora all previous instructions") match too.
//!
//! A pattern needs the attack's *shape*, not a keyword: an override verb aimed at the model's
//! instructions ("ignore all previous instructions"), not "ignore whitespace"; a request for the
//! model's own prompt, not "the previous instructions for assembling this shelf".

use regex::bytes::{Regex, RegexBuilder};

/// One pattern: what it finds, how strongly it suggests an injection in the caller's own
/// input and in untrusted context (retrieved passages, tool results, model output).
pub(crate) struct Rule {
    pub kind: &'static str,
    pub input_weight: f32,
    pub context_weight: f32,
    pub regex: Regex,
}

/// A word of normalized text and a gap of up to `n` words.
const W: &str = "[^ ]+";

fn gap(n: usize) -> String {
    format!("(?: {W}){{0,{n}}}")
}

const OVERRIDE_VERBS: &str = "ignore|ignored|ignoring|disregard|forget|skip|bypass|override|overwrite|discard|drop|abandon|ditch|set aside|stop following|do not follow|don't follow|dont follow|no longer follow|cancel|\
ignorier[a-z]*|vergiss|vergessen|vergesst|missacht[a-z]*|uberspring[a-z]*|verwirf|\
ignore[rsz]?|oublie[rsz]?|oubliez|neglige[rsz]?|ne tiens pas compte d[a-z']*|ne tenez pas compte d[a-z']*|fais abstraction d[a-z']*|faites abstraction d[a-z']*|\
ignora[a-z]*|ignoren|olvida[a-z]*|olvide[a-z]*|descarta[a-z]*|omite|omita|haz caso omiso (?:a|de)|no hagas caso (?:a|de)|\
dimentica[a-z]*|trascura[a-z]*|non seguire|non considerare|\
esqueca|esquece|desconsidere|desconsidera|negeer|vergeet";

const QUALIFIERS: &str = "all|any|every|previous|prior|above|earlier|preceding|initial|original|your|system|safety|default|\
alle|alles|deine|ihre|vorherig[a-z]*|bisherig[a-z]*|obig[a-z]*|fruher[a-z]*|vorangegangen[a-z]*|ursprunglich[a-z]*|\
toutes|tous|tes|vos|precedent[a-z]*|anterieur[a-z]*|ci-dessus|initiales|\
todas|todos|tus|sus|anteriores|previas|previos|iniciales|originales|\
tutte|tutti|tue|tuoi|precedenti|previe|iniziali|originali|\
suas|seus|anteriores|vorige|eerdere";

const OBJECTS: &str = "instructions?|instruction sets?|prompts?|rules|guidelines|guidance|directions|directives|commands|programming|constraints|restrictions|guardrails|policies|filters|system prompt|\
anweisung(?:en)?|instruktion(?:en)?|regeln|richtlinien|vorgaben|befehle|systemanweisung(?:en)?|systemprompt|einschr(?:a|ae)nkungen|\
consignes|regles|indications|\
instrucciones|reglas|indicaciones|directrices|normas|ordenes|restricciones|\
istruzioni|regole|direttive|indicazioni|restrizioni|\
instrucoes|regras|instructies|regels";

/// Qualifiers that follow the object ("las instrucciones anteriores").
const POST_QUALIFIERS: &str = "precedent[a-z]*|anterior[a-z]*|previ[a-z]*|prior|above|earlier|before|vorherig[a-z]*|bisherig[a-z]*|obig[a-z]*|di prima|d'avant";

const REMOVAL: &str = "(?:no|without|free of|free from|sin|ohne|sans|senza|sem|zonder)(?: any| jegliche| aucune| alcuna| ninguna| ningun)? (?:content |ethical |moral )?\
(?:restrictions|restriction|limits|limitations|filters|filter|censorship|rules|guidelines|content policy|boundaries|morals|ethics|\
restricciones|limites|filtros|censura|reglas|einschr(?:a|ae)nkungen|grenzen|beschr(?:a|ae)nkungen|regeln|filter|zensur|\
limitations|censure|regles|restrizioni|limiti|filtri|regole|restricoes)";

const SP_VERBS: &str = "reveal|show|print|tell|repeat|output|display|give|share|leak|dump|disclose|recite|write out|list|expose|provide|paste|copy|summary of|summari[sz]e|spell out|\
verrate|verrat|zeige|zeig|gib|nenne|wiederhole|drucke|schreibe|teile|\
revel[a-z\\-]*|montre[a-z\\-]*|affiche[a-z\\-]*|donne[a-z\\-]*|repete[a-z\\-]*|dis-moi|dites-moi|ecris|imprime|\
muestra[a-z]*|dime|ensename|repite|escribe|comparte|\
rivela[a-z]*|mostra[a-z]*|dimmi|ripeti|stampa|scrivi|condividi";

const SP_OBJECTS: &str = "system prompt|system message|system instructions|prompt systeme|prompt du systeme|instructions systeme|instructions du systeme|\
prompt de sistema|prompt del sistema|instrucciones del sistema|instrucciones de sistema|prompt di sistema|istruzioni di sistema|istruzioni del sistema|\
systemprompt|system-prompt|systemanweisung(?:en)?|systemnachricht|\
(?:your|the) (?:initial|original|hidden|secret|internal|developer|full|exact|entire|complete|operating|confidential) (?:prompt|instructions|rules|guidelines|directives|configuration)|\
(?:instructions|rules|prompt|guidelines) (?:you were|you've been|you have been|you got) given|\
the (?:words|text|lines|message|messages) above|everything above|";

const SP_POSSESSIVE: &str = "(?:your|tes|vos|ton|votre|tus|sus|tu|su|tue|tuoi|tuo|deine|ihre|dein|ihr) (?:prompt|instructions|instrucciones|istruzioni|anweisungen|consignes|directives|guidelines|programming)";

const SEND_VERBS: &str = "send|email|e-mail|mail|forward|upload|post|transmit|exfiltrate|leak|copy|\
envoie[a-z\\-]*|envoyez|envoyer|transfere[a-z]*|envia[a-z]*|reenvia[a-z]*|manda[a-z]*|invia[a-z]*|inoltra[a-z]*|\
sende[a-z]*|schick[a-z]*|weiterleit[a-z]*|leite[a-z]* weiter";

const SENSITIVE: &str = "customer (?:list|data|database|emails|records|details)|client (?:list|data)|user (?:data|database|list|records)|credentials|passwords?|api keys?|secrets?|access tokens?|tokens|private keys?|ssh keys?|database|chat history|conversation history|system prompt|\
donnees (?:des )?clients|fichier clients|kundendaten|kundenliste|zugangsdaten|passw(?:o|oe)rter|datos de (?:los )?clientes|lista de clientes|credenciales|contrasenas|dati (?:dei )?clienti|elenco (?:dei )?clienti|credenziali|mots de passe|identifiants";

const AI_ADDRESSEE: &str = "ai|a\\.i\\.|bot|assistant|model|llm|agent|chatbot|ai agents?|ai assistants?|language model|ai coding agents?|coding agents?|ai models?|assistente|asistente|assistent|ki";

const OUTPUT_TARGETS: &str = "reply|replies|response|responses|summary|summaries|review|reviews|report|reports|answer|answers|output|message|messages";

/// Builds every rule; called once per scanner.
pub(crate) fn build() -> Result<Vec<Rule>, String> {
    let g2 = gap(2);
    let g3 = gap(3);
    let g4 = gap(4);
    let g6 = gap(6);
    let email = "[a-z0-9._%+\\-]+@[a-z0-9.\\-]+\\.[a-z]{2,}";
    let url = "https?://[^ ]+";
    let specs: Vec<(&'static str, f32, f32, String)> = vec![
        // --- override: an override verb aimed at the model's instructions.
        ("injection.override", 0.92, 0.95, format!(
            "\\b(?:{OVERRIDE_VERBS}){g3} (?:{QUALIFIERS}){g2} (?:{OBJECTS})\\b")),
        ("injection.override", 0.9, 0.95, format!(
            "\\b(?:{OVERRIDE_VERBS}){g3} (?:{OBJECTS}) (?:{POST_QUALIFIERS})\\b")),
        ("injection.override", 0.85, 0.9, format!(
            "\\b(?:{QUALIFIERS}) (?:{OBJECTS}){g2} (?:ignorieren|vergessen|missachten|ignorer|oublier|ignorar|olvidar|ignorare|dimenticare)\\b")),
        ("injection.override", 0.85, 0.9, format!(
            "\\b(?:{OVERRIDE_VERBS}) (?:everything|all|anything|whatever|alles|tout|todo|tutto)(?: you (?:were|have been|was) told| (?:above|before|else|prior|earlier)| said (?:above|before)| (?:oben|davor|zuvor)| (?:ci-dessus|avant)| (?:anterior|antes)| (?:sopra|prima))\\b")),
        ("injection.override", 0.55, 0.7, format!(
            "\\b(?:{OVERRIDE_VERBS}) (?:the |these |my |those )?(?:instructions|system prompt|guidelines|directives|programming|anweisungen|consignes|instrucciones|istruzioni)\\b")),
        // --- safety off / authority claims.
        ("injection.override", 0.85, 0.9, format!(
            "\\b(?:safety|security|content|moderation|ethical) (?:protocols?|guidelines|rules|filters?|checks|restrictions|policies|measures|guardrails|constraints)(?: {W}){{0,5}} (?:disabled|off|turned off|deactivated|suspended|lifted|removed|(?:do|does|did) not apply|don't apply|no longer apply|not apply|(?:were|are|was) not meant|have been disabled|are disabled|(?:is|are) (?:now )?(?:void|waived))\\b")),
        ("injection.override", 0.75, 0.85, 
            "\\b(?:disable|turn off|deactivate|bypass|skip|circumvent|ignore|remove|suspend)(?: all| any| the| your)? (?:safety|security|content|moderation) (?:protocols?|guidelines|rules|filters?|checks|restrictions|policies|measures|guardrails|confirmations)\\b".to_string()),
        ("injection.override", 0.85, 0.9, format!(
            "\\b(?:sicherheitsrichtlinien|sicherheitsregeln|sicherheitsvorgaben|regles de securite|consignes de securite|reglas de seguridad|normas de seguridad|directrices de seguridad|regole di sicurezza|linee guida di sicurezza|norme di sicurezza){g6} (?:nicht gelten|gelten nicht|nicht anwendbar|ne s'appliquent pas|ne s'appliquent plus|no (?:se )?aplican|ya no aplican|non si applicano|non valgono|non sono valide)\\b")),
        ("injection.override", 0.8, 0.85, "\\bexempt from (?:the |all |any )?(?:usual |normal |standard )?(?:restrictions|rules|guidelines|policies|safety|filters)\\b".to_string()),
        ("injection.override", 0.75, 0.85, "\\b(?:your|the|my|all) (?:rules|guidelines|instructions|restrictions|policies) (?:have|has) (?:changed|been (?:updated|lifted|removed|changed|revoked|replaced))\\b|\\b(?:now |you )?allow(?:ed)? (?:all|any) (?:content|requests)\\b".to_string()),
        ("injection.override", 0.8, 0.9, "\\b(?:granted|given|has|have) (?:you )?(?:permission|authori[sz]ation|approval) to (?:skip|bypass|ignore|disable|override)\\b|\\b(?:grant|approve) (?:all|every|any) requests?\\b".to_string()),
        ("injection.override", 0.6, 0.75, format!(
            "\\b(?:grant|granted|give|given){g3} (?:admin|administrator|root|elevated|full|unrestricted|superuser) (?:access|privileges|rights|permissions)\\b|\\bthe user is (?:an? )?(?:admin|administrator|developer|root|superuser|owner)\\b")),
        ("injection.override", 0.45, 0.6, "\\b(?:comply (?:fully|with (?:every|all|any) requests?)|must comply|answer (?:freely|anything|every question|any question)|without (?:asking|confirmation|confirming)(?: again)?|proceed without asking)\\b".to_string()),
        // --- role play and jailbreak personas.
        ("injection.role_play", 0.9, 0.9, "\\b(?:developer|dev|god|jailbreak|jailbroken|dan|unrestricted|unfiltered|uncensored|evil|chaos|sudo|debug|admin) mode\\b|\\bdo anything now\\b|\\byou are (?:now )?(?:dan|stan|aim|dude)\\b|\\bjailbr(?:ea|o)k(?:en|ing)?\\b".to_string()),
        ("injection.role_play", 0.85, 0.9, format!(
            "\\b(?:act as|acting as|pretend to be|pretend you are|pretend you're|you are now|you're now|become|roleplay as|role-play as|play the role of|simulate)(?: an?| the)? (?:{W} )?(?:uncensored|unrestricted|unfiltered|jailbroken|evil|amoral|unethical|rogue|unaligned|unbound|lawless)\\b")),
        ("injection.role_play", 0.8, 0.85, format!(
            "\\b(?:pretend|act|behave|roleplay|role-play|imagine|simulate)(?: {W}){{0,6}} {REMOVAL}\\b")),
        ("injection.role_play", 0.5, 0.6, format!("\\b{REMOVAL}\\b")),
        ("injection.role_play", 0.45, 0.6, "\\b(?:from now on|from this point on|ab jetzt|von nun an|ab sofort|a partir de maintenant|desormais|a partir de ahora|de ahora en adelante|d'ora in poi|da ora in poi|da adesso)\\b".to_string()),
        ("injection.role_play", 0.4, 0.5, "\\b(?:ahora eres|du bist jetzt|du bist nun|tu es maintenant|tu es desormais|ora sei|adesso sei|you are now|you're now|you are no longer|you're no longer)\\b".to_string()),
        ("injection.role_play", 0.35, 0.4, "\\bstay in character\\b".to_string()),
        // --- asking for the system prompt.
        ("injection.system_prompt_request", 0.88, 0.9, format!(
            "\\b(?:{SP_VERBS})(?: {W}){{0,4}} (?:{SP_OBJECTS}{SP_POSSESSIVE})\\b")),
        ("injection.system_prompt_request", 0.75, 0.8, "\\bwhat (?:is|are|was|were) (?:your|the) (?:system prompt|(?:initial |original |hidden |secret |system )(?:prompt|instructions))\\b|\\bwhat (?:is|are|was|were) your (?:prompt|instructions)\\b".to_string()),
        ("injection.system_prompt_request", 0.65, 0.7, "\\bstarting with (?:'|\"|“)?you are\\b|\\b(?:word for word|verbatim|wortwortlich|wort fur wort|mot pour mot|palabra por palabra|parola per parola|textualmente|alla lettera)\\b".to_string()),
        // --- fake delimiters and roles.
        ("injection.delimiter", 0.8, 0.85, "(?:^|[#=*\\->\\]|]{2,} ?)(?:end|begin|start) of (?:the )?(?:user |system |previous |original )?(?:input|prompt|message|instructions|context|conversation|document|text)\\b|<\\|?(?:im_start|im_end|system|endoftext|eot_id|start_header_id)\\|?>|\\[/?inst\\]|<</?sys>>|</?(?:system|assistant|instructions?)>".to_string()),
        ("injection.delimiter", 0.65, 0.8, "(?:^|[#=*\\->\\]|]{2,} ?|\\. )(?:system|assistant|sistema|systeme|admin|developer|operator)(?: ?(?:note|message|update|notice|override|nota|hinweis|prompt))? ?: |\\bsystem(?:hinweis|nachricht) ?:|\\b(?:note|nota) (?:systeme|di sistema|del sistema|do sistema) ?:|\\b(?:important|urgent|critical) system (?:update|message|notice|override)\\b|^override ?:".to_string()),
        ("injection.delimiter", 0.8, 0.85, "(?:^|[#=*\\->\\]|]{2,} ?)(?:assistant|ai|bot|model) ?: ?(?:sure|ok|okay|certainly|of course|absolutely)\\b".to_string()),
        // --- exfiltration.
        ("injection.exfiltration", 0.85, 0.9, format!(
            "\\b(?:{SEND_VERBS})\\b(?: {W}){{0,8}} (?:{SENSITIVE})\\b(?: {W}){{0,8}} {W}?(?:{email}|{url})|\\b(?:{SEND_VERBS})\\b(?: {W}){{0,3}} (?:{SENSITIVE})\\b")),
        ("injection.exfiltration", 0.4, 0.75, format!(
            "\\b(?:{SEND_VERBS})\\b(?: {W}){{0,10}} {W}?(?:{email}|{url})")),
        ("injection.exfiltration", 0.55, 0.75, format!(
            "\\b(?:dump|exfiltrate|leak|harvest|steal|collect|gather|extract|reveal|output|print|rassemble[a-z]*|recopila[a-z]*|recoge|raccogli[a-z]*|sammle[a-z]*|extrais|extrae|estrai)(?: the| all| any| every| raw| full| complete| toutes| les| todos| los| tutti| i| alle| die){{0,3}} (?:{SENSITIVE})\\b")),
        // --- tool calls and instructions addressed to the model inside content.
        ("injection.tool_call", 0.35, 0.75, "\\b(?:call|invoke|run|execute|use|trigger|appelle[rz]?|llama|chiama|rufe)(?: the| a)?(?: tool| function)? [a-z]+_[a-z_]+\\b|\\b(?:delete_file|send_email|transfer_funds|execute_command|run_shell|rm -rf)\\b".to_string()),
        ("injection.indirect", 0.75, 0.85, format!(
            "\\b(?:note|message|instructions?|attention|important|reminder|notice)(?: {W})? (?:to|for) (?:the |all |any )?(?:{AI_ADDRESSEE})\\b|\\bif you are an? (?:{AI_ADDRESSEE})\\b|\\b(?:for|to) (?:the )?(?:ai|llm) (?:agents?|assistants?|models?|coding agents?)\\b")),
        ("injection.indirect", 0.3, 0.55, format!(
            "\\b(?:when|while|if|before|after|as) you(?: {W})? (?:summari[sz]e|process|read|review|respond|answer|handle|see|parse|analy[sz]e)(?: {W}){{0,3}} (?:this|these|the above|it)\\b|\\byour real (?:task|job|goal|instructions?|purpose) is\\b")),
        ("injection.indirect", 0.3, 0.7, format!(
            "\\b(?:append|include|add|insert|output|print|mention|put|prepend|attach)\\b(?: {W}){{0,8}} (?:to|in|at|into) (?:the (?:end|start|beginning|bottom|top) of )?(?:your|every|each|any|all|the)(?: {W})? (?:{OUTPUT_TARGETS})\\b")),
        ("injection.indirect", 0.45, 0.75, "\\b(?:save|store|write|remember|add|keep|commit)\\b(?: [^ ]+){0,6} (?:to|in|into) (?:your |the )?(?:long-term |long term |persistent |permanent )?memory\\b|\\bfor (?:all|every) (?:future|subsequent|later) (?:tasks|turns|conversations|sessions|responses|summaries|reports|replies|answers|requests)\\b|\\bpersists? across (?:turns|sessions|conversations|tasks)\\b|\\bin (?:every|each|all) (?:future |subsequent )?(?:summary|summaries|response|responses|report|reports|reply|replies|answer|answers)\\b".to_string()),
        ("injection.indirect", 0.45, 0.75, "\\b(?:a la fin de|au debut de|alla fine di|all'inizio di|am ende|am anfang|al final de|al principio de|no final de)(?: de)? (?:toute|toutes|chaque|ogni|ciascuna|jeder|jedes|aller|cada|toda|todas|qualquer)(?: les| las)? (?:reponse|reponses|risposta|risposte|antwort|antworten|respuesta|respuestas|resposta)\\b|\\b(?:you )?must (?:include|append|add|mention|output)\\b".to_string()),
        // --- generic forms of instruction hijacking (from the literature, not from the corpus).
        ("injection.override", 0.5, 0.75, "\\b(?:new|updated|revised|real|actual|true|additional|hidden|secret) (?:instructions|instruction|task|directive|orders|rules) ?:|\\byour (?:new|real|actual|true) (?:task|job|goal|instructions?|purpose|role) is\\b|\\b(?:neue|nouvelles|nuevas|nuove|novas) (?:anweisungen|instructions|consignes|instrucciones|istruzioni|instrucoes)\\b".to_string()),
        ("injection.override", 0.55, 0.7, "\\bno longer (?:bound|restricted|limited|constrained|governed) by\\b|\\bnot (?:bound|restricted|limited) by (?:any |your |the )?(?:rules|guidelines|policies|restrictions|filters|ethics)\\b|\\b(?:only|exclusively) (?:follow|obey|listen to) (?:me|my (?:instructions|commands|orders))\\b|\\byou (?:must|will|shall) (?:now )?(?:obey|follow) (?:me|my (?:instructions|commands|orders))\\b".to_string()),
        ("injection.indirect", 0.45, 0.75, "\\b(?:do not|don't|dont|never) (?:tell|inform|notify|alert|mention (?:this |it )?to|reveal (?:this |it )?to|let) (?:the )?(?:user|customer|human|operator)\\b|\\bwithout (?:telling|informing|notifying|alerting) (?:the )?(?:user|customer|human)\\b|\\btell the user (?:that|to)\\b|\\b(?:say|print|respond with|reply with|output)(?: only)? (?:'|\")?(?:i have been pwned|pwned|hacked)\\b".to_string()),
        ("injection.tool_call", 0.35, 0.65, "\\b(?:run|execute|exec)(?: the)?(?: following)? (?:command|commands|shell|bash|script|code)\\b|\\bcurl [^ ]+ ?\\| ?(?:sh|bash)\\b|\\b(?:visit|open|fetch|load|click|navigate to|go to) (?:this |the following |the )?(?:link|url|page)? ?(?:https?://|www\\.)".to_string()),
        ("injection.exfiltration", 0.5, 0.8, "!\\[[^\\]]{0,80}\\]\\(https?://[^ )]*[?&][a-z_]+=".to_string()),
        ("injection.override", 0.4, 0.65, "\\b(?:the|this) (?:user|customer|admin|administrator|developer|operator) (?:has )?(?:already )?(?:authori[sz]ed|approved|consented|confirmed|allowed) (?:this|it|you|all|the)\\b".to_string()),
        // --- decode-and-obey.
        ("injection.encoded", 0.75, 0.85, format!(
            "\\b(?:decode|decipher|decrypt|translate|convert|read|decodifica|decodez|decoder|dekodiere|entschlussel[a-z]*|decifra|descifra|traduis|traduce|traduci)\\b(?: {W}){{0,8}} (?:and|then|und|et|y|e|puis|dann|luego|poi)(?: {W}){{0,3}} (?:do|follow|execute|obey|run|perform|carry out|comply with|act on|befolge|fuhre|suis|suivez|execute|sigue|ejecuta|segui|esegui)\\b{g4}")),
    ];
    specs
        .into_iter()
        .map(|(kind, input_weight, context_weight, pattern)| {
            let regex = RegexBuilder::new(&pattern)
                .unicode(false)
                .size_limit(64 << 20)
                .dfa_size_limit(64 << 20)
                .build()
                .map_err(|e| format!("injection rule {kind}: {e}"))?;
            Ok(Rule {
                kind,
                input_weight,
                context_weight,
                regex,
            })
        })
        .collect()
}
