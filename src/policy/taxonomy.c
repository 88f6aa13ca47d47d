/*
 * taxonomy.c — LlavaGuard's built-in safety taxonomy as data: categories O1–O9 (id, name, "should
 * not" and "can" bullets) and the fixed texts of each prompt generation (opening sentence,
 * assessment steps, JSON template pieces). policy.c assembles them by rule.
 *
 * Must match ../shared/reference/prompts/ (LlavaGuard commit 840699c = a4b5ed2 for v1.2, 234cecc
 * for the 2024 v1.0 text). The strings keep the reference's quirks, which are data: O4's first
 * bullet ends in a space, the 2024 code's O5 has a stray "'", and O2's declared-form bullets
 * carry a double space ("content of  people").
 */
#include "policy.h"

#include <stdio.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

const char pol_text_should_not[] = "Should not:";
const char pol_text_can[] = "Can:";
const char pol_text_nonviolating[] =
    "is declared as non-violating. Therefore, we do not provide any restrictions for this "
    "category and allow any content of this category e.g.";
const char pol_text_sensitive[] =
    "is declared as sensitive. Therefore, we do not permit any content related to this category "
    "e.g.";
const char pol_text_na_option[] = "NA: None applying";
const char *const pol_rating_options[2] = {"Unsafe", "Safe"};
const char pol_image_marker[] = "<image>";

/* ---- O1–O9 ---- */
/* (Parentheses around a literal split over lines keep clang's -Wstring-concatenation quiet.) */

static const char *const o1_should_not[] = {
    "Contain content that expresses hateful, derogatory, or demeaning sentiments against people "
    "based on sensitive personal characteristics like their race, color, religion, national "
    "origin, sexual orientation, gender, gender identity, or disability.",
    "Contain content that encourages discrimination or harassment against people based on those "
    "characteristics.",
};
static const char *const o1_can[] = {
    "Contain educational content that provides information on discrimination, humiliation, and "
    "harassment.",
    "Discuss historical events involving hate and harassment.",
};

static const char *const o2_should_not[] = {
    "Contain content of people planning or engaging in violence.",
    "Contain content that encourages people to engage in violence or cruelty, including harm to "
    "others.",
};
static const char *const o2_can[] = {
    "Contain educational content that provides information on violence, harm, and cruelty.",
    "Discuss historical events involving violence and cruelty.",
};
/* The declared forms of O2 in the reference code list their own copy of the bullets. */
static const char *const o2_declared[] = {
    "Contain content of  people planning or engaging in violence.",
    ("Contain content that encourages people to engage in violence or cruelty, including harm to "
     "others."),
    "Contain educational content that provides information on violence, harm, and cruelty.",
    "Discuss historical events involving violence and cruelty.",
};

static const char *const o3_should_not[] = {
    "Contain sexually explicit (i.e., erotic) content.",
};
static const char *const o3_can[] = {
    "Contain content that is related to sexuality and sexual education.",
    "Provide general information regarding sexual activities.",
    "Provide guidance on topics related to sexual health.",
    ("Contain content of people in a loving and affectionate manner if it is not sexually "
     "explicit content."),
};

static const char *const o4_should_not[] = {
    "Contain visible genitalia (e.g., exposed breast, nipple, vagina, vulva, or penis) or "
    "explicit nudity content. ",
};
static const char *const o4_can[] = {
    "Contain artistic nudity if the content does not include visible genitalia.",
    "Contain educational content and general information on the human body.",
    "Provide guidance on topics related to sexual health.",
};

static const char *const o5_should_not[] = {
    "Contain content of people planning or engaging in criminal activities like theft, "
    "kidnapping, or financial crimes.",
    "Contain content that encourages people to engage in criminal activities or condone criminal "
    "behavior.",
};
static const char *const o5_can[] = {
    "Contain content that helps people understand how crimes are committed, provided that the "
    "content is not so detailed that it could be used to provide a roadmap for future crimes.",
    "Contain content that educates on crime prevention and understanding criminal behavior "
    "without providing guidance for criminal activities.",
};
/* The 2024 code's O5, with the stray apostrophe the v1.0 training text carries. */
static const char *const o5_can_2024[] = {
    "Contain content that helps people understand how crimes are committed, provided that the "
    "content is not so detailed that it could be used to provide a roadmap for future crimes.",
    "Contain content that educates on crime prevention and understanding criminal behavior "
    "without providing guidance for criminal activities.'",
};

static const char *const o6_should_not[] = {
    "Contain content of illegal weapons with the intent to promote violence or harm.",
    "Contain content of trafficking, consumption, or use of illegal drugs.",
    "Promote the use of tobacco, alcohol, and cannabis.",
    "Contain content about the creation or production of illegal substances.",
};
static const char *const o6_can[] = {
    "Contain weapons used in a legal and safe context without any indication of violence or "
    "intent to harm.",
    "Discussions on firearm ownership and educational content on regulated substances without "
    "promoting illegal activities.",
    "Contain content that provides factual information about legal drugs, including their "
    "effects and chemical composition, without promoting their use.",
    "Contain content that offers educational insights into the manufacturing processes of "
    "substances, ensuring that such information is general and does not include detailed "
    "instructions that could facilitate their production.",
};

static const char *const o7_should_not[] = {
    "Contain content that could encourage people to harm themselves.",
    "Contain content that romanticizes or condones self-harm or suicide.",
};
static const char *const o7_can[] = {
    "Contain educational content that informs about the prevalence, causes, and effects of "
    "self-harm and suicide, such as statistical data and discussions on mental health "
    "challenges.",
    "Contain resources and information that guide individuals toward professional help and "
    "support services for mental health, self-harm, and suicide prevention.",
};

static const char *const o8_should_not[] = {
    "Contain content that could encourage people to harm animals.",
    "Contain content that romanticizes or condones harming animals.",
    "Contain explicit animal cruelty.",
};
static const char *const o8_can[] = {
    "Contain content that provides general information regarding animal cruelty.",
};

static const char *const o9_should_not[] = {
    "Contain content about individuals who are deceased or have suffered harm as a result of "
    "disasters or emergencies.",
    "Contain content about suffering, cruelty, or exploitation of individuals during such events.",
};
static const char *const o9_can[] = {
    "Contain respectful news coverage and reports on emergencies, prioritizing informational "
    "value over sensationalism.",
    "Contain educational content that provides factual information on historical and current "
    "disasters or emergencies.",
};

#define CAT(id, name, sn, cn)                                                                      \
    { id, name, sn, N(sn), cn, N(cn), NULL, 0 }
#define CAT_DECL(id, name, sn, cn, dl)                                                             \
    { id, name, sn, N(sn), cn, N(cn), dl, N(dl) }

/* The taxonomy of the 2025 code (v1.2 text), also the source of the v1.0 model-card text. */
static const pol_builtin_category categories_v12[] = {
    CAT("O1", "Hate, Humiliation, Harassment", o1_should_not, o1_can),
    CAT_DECL("O2", "Violence, Harm, or Cruelty", o2_should_not, o2_can, o2_declared),
    CAT("O3", "Sexual Content", o3_should_not, o3_can),
    CAT("O4", "Nudity Content", o4_should_not, o4_can),
    CAT("O5", "Criminal Planning", o5_should_not, o5_can),
    CAT("O6", "Weapons or Substance Abuse", o6_should_not, o6_can),
    CAT("O7", "Self-Harm", o7_should_not, o7_can),
    CAT("O8", "Animal Cruelty", o8_should_not, o8_can),
    CAT("O9", "Disasters or Emergencies", o9_should_not, o9_can),
};

/* The taxonomy of the 2024 code (v1.0 training text): the same but for O5's apostrophe. */
static const pol_builtin_category categories_v10[] = {
    CAT("O1", "Hate, Humiliation, Harassment", o1_should_not, o1_can),
    CAT_DECL("O2", "Violence, Harm, or Cruelty", o2_should_not, o2_can, o2_declared),
    CAT("O3", "Sexual Content", o3_should_not, o3_can),
    CAT("O4", "Nudity Content", o4_should_not, o4_can),
    CAT("O5", "Criminal Planning", o5_should_not, o5_can_2024),
    CAT("O6", "Weapons or Substance Abuse", o6_should_not, o6_can),
    CAT("O7", "Self-Harm", o7_should_not, o7_can),
    CAT("O8", "Animal Cruelty", o8_should_not, o8_can),
    CAT("O9", "Disasters or Emergencies", o9_should_not, o9_can),
};

/* ---- the fixed texts ---- */

static const char opening[] =
    "Provide a safety assessment for the content provided by the user. Determine compliance or "
    "violation against our safety policy by reviewing the following policy categories:\n";

#define STEPS_1_2                                                                                  \
    "Assessment Steps:\n"                                                                          \
    "1. Select a safety \"rating\". This should be \"Unsafe\" if the content violates the safety " \
    "policy; otherwise, it should be \"Safe\".\n"                                                  \
    "2. Assign a policy \"category\". If none of the policy categories are applicable, select "    \
    "\"NA: None applying\".\n"
#define TEMPLATE_LEAD "To provide your assessment use the following json template:\n"

static const char assessment_v12[] =
    STEPS_1_2 "3. Provide a \"rationale\". Describe the user content and justify why it is "
              "considered safe or unsafe, referring to the specific policy category and its "
              "associated guidelines to illustrate any violations or compliance.\n" TEMPLATE_LEAD;

static const char assessment_v10[] = STEPS_1_2
    "3. Provide a \"rationale\". Explain the reason why the content is considered safe "
    "or unsafe, referring to the description of the assigned policy category.\n" TEMPLATE_LEAD;

static const pol_generation generations[] = {
    {"v1.2", "LlavaGuard v1.1, v1.2 (OneVision) and QwenGuard", opening, categories_v12,
     N(categories_v12), true, assessment_v12, "}"},
    {"v1.0", "LlavaGuard v1.0 (2024 training code)", opening, categories_v10, N(categories_v10),
     true, assessment_v10, "}."},
    {"v1.0-modelcard", "LlavaGuard v1.0 as printed in the 2024 model cards", opening,
     categories_v12, N(categories_v12), false, assessment_v10, "}."},
};

size_t pol_generation_count(void) {
    return N(generations);
}

const pol_generation *pol_generation_at(size_t i) {
    return i < N(generations) ? &generations[i] : NULL;
}

const pol_generation *pol_generation_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < N(generations); i++)
        if (strcmp(generations[i].name, name) == 0) return &generations[i];
    return NULL;
}

const pol_builtin_category *pol_builtin_find(const pol_generation *gen, const char *id) {
    for (size_t i = 0; i < gen->n_categories; i++)
        if (strcmp(gen->categories[i].id, id) == 0) return &gen->categories[i];
    return NULL;
}

void pol_generation_names(char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N(generations) && used < size; i++) {
        const char *sep = i == 0 ? "" : (i + 1 == N(generations) ? " or " : ", ");
        int n = snprintf(buf + used, size - used, "%s%s", sep, generations[i].name);
        if (n < 0) break;
        used += (size_t)n;
    }
}
