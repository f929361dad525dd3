/*
 * loader.h: what the parts of the rules loader share (rules/ only).
 * rules.c reads the general sections; procedures.c reads roles, chains,
 * and each procedure's states and transitions.
 */
#ifndef ESC_LOADER_H
#define ESC_LOADER_H

#include "common/yaml.h"
#include "rules/rules.h"

struct loader {
	struct yaml_file *file;
	struct rules *rules;
	const char *template_dir;
};

/* Compile SOURCE into PAT; a bad pattern is reported at NODE. */
void loader_pattern(struct loader *ld, struct fy_node *node,
    const char *source, uint32_t options, struct pattern *pat);
void pattern_free(gpointer data);

/* Template NAME, loaded once per rules; NULL (reported at AT) if bad. */
struct template *loader_template(struct loader *ld, struct fy_node *at,
    const char *name);
const struct calendar *loader_calendar(const struct rules *rules,
    const char *name);

/* Sections of procedures.c, in the order rules.c calls them. */
void load_roles(struct loader *ld);
void load_functions(struct loader *ld);
void load_chains(struct loader *ld);
void load_procedure_flow(struct loader *ld, struct procedure *proc,
    struct fy_node *map);
/* After all procedures: links between them, and the graph checks. */
void check_procedures(struct loader *ld);
void procedure_flow_free(struct procedure *proc);
void roles_free(struct rules *rules);

#endif
