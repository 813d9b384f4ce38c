//! Every part of the API is described: GraphiQL's docs pane is where developers read it.
//!
//! Walks the SDL the server serves (what `schema.graphql` holds) and lists every type, field,
//! argument, input field and enum value without a description. Built-in scalars and
//! introspection types are not in the SDL; built-in directives are not checked.

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{
    FieldDefinition, InputValueDefinition, TypeKind, TypeSystemDefinition,
};
use async_graphql::{Positioned, parser::types::TypeDefinition};

/// The undescribed parts of one type, as `Type`, `Type.field`, `Type.field(arg)`, `Type.VALUE`.
fn undescribed(ty: &TypeDefinition) -> Vec<String> {
    let name = ty.name.node.as_str();
    let mut missing = Vec::new();
    if ty.description.is_none() {
        missing.push(name.to_owned());
    }
    let fields = |fields: &[Positioned<FieldDefinition>], missing: &mut Vec<String>| {
        for field in fields {
            let field_name = format!("{name}.{}", field.node.name.node);
            if field.node.description.is_none() {
                missing.push(field_name.clone());
            }
            inputs(&field.node.arguments, &field_name, true, missing);
        }
    };
    match &ty.kind {
        TypeKind::Object(object) => fields(&object.fields, &mut missing),
        TypeKind::Interface(interface) => fields(&interface.fields, &mut missing),
        TypeKind::InputObject(input) => inputs(&input.fields, name, false, &mut missing),
        TypeKind::Enum(e) => missing.extend(
            e.values
                .iter()
                .filter(|v| v.node.description.is_none())
                .map(|v| format!("{name}.{}", v.node.value.node)),
        ),
        TypeKind::Scalar | TypeKind::Union(_) => {}
    }
    missing
}

fn inputs(
    values: &[Positioned<InputValueDefinition>],
    owner: &str,
    arguments: bool,
    missing: &mut Vec<String>,
) {
    for value in values.iter().filter(|v| v.node.description.is_none()) {
        missing.push(match arguments {
            true => format!("{owner}({})", value.node.name.node),
            false => format!("{owner}.{}", value.node.name.node),
        });
    }
}

#[test]
fn every_type_field_argument_and_value_has_a_description() {
    let document = parse_schema(stackgate::graphql::sdl()).expect("the SDL parses");
    let missing: Vec<String> = document
        .definitions
        .iter()
        .filter_map(|definition| match definition {
            TypeSystemDefinition::Type(ty) => Some(undescribed(&ty.node)),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        missing.is_empty(),
        "{} parts of the schema have no description (`///` on types, fields and enum values; \
         `#[graphql(desc = \"...\")]` on arguments):\n{}",
        missing.len(),
        missing.join("\n")
    );
}
